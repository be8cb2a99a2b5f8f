"""Identity's part of `manage.py bootstrap`."""
from django.conf import settings
from django.contrib.auth import get_user_model

from identity import tokens
from identity.models import (
    DEFAULT_DOMAIN_ID, Domain, Endpoint, Project, Region, Role, RoleAssignment, Service, User,
)
from identity.passwords import check_secret, hash_secret

ROLES = ("admin", "member", "reader")

# (type, name, path under the public URL)
CATALOG = [
    ("identity", "keystone", "/identity"),
    ("compute", "nova", "/compute/v2.1"),
    ("image", "glance", "/image"),
    ("network", "neutron", "/network"),
    ("block-storage", "cinder", "/volume/v3/$(project_id)s"),
    ("volumev3", "cinderv3", "/volume/v3/$(project_id)s"),
]

SERVICE_USER = "stratus"


def _user(name, password, domain, project):
    user, created = User.objects.get_or_create(
        domain=domain, name=name, defaults={"password": hash_secret(password), "default_project": project})
    if not created and not check_secret(password, user.password):
        user.password = hash_secret(password)
        user.save(update_fields=["password"])
    return user


def run(options, out):
    tokens.keys.setup()
    domain, _ = Domain.objects.get_or_create(
        id=DEFAULT_DOMAIN_ID, defaults={"name": "Default", "description": "The default domain"})
    roles = {name: Role.objects.get_or_create(name=name, domain=None)[0] for name in ROLES}
    projects = {
        name: Project.objects.get_or_create(domain=domain, name=name, defaults={"description": description})[0]
        for name, description in (("admin", "Cloud administration"), ("demo", "Demo project"),
                                  ("service", "Stratus's own service users"))
    }
    admin = _user("admin", settings.ADMIN_PASSWORD, domain, projects["admin"])
    demo = _user("demo", settings.DEMO_PASSWORD, domain, projects["demo"])
    service = _user(SERVICE_USER, settings.SERVICE_PASSWORD, domain, projects["service"])
    grants = [(admin, projects["admin"], "admin"), (demo, projects["demo"], "member"),
              (service, projects["service"], "admin")]
    for user, project, role in grants:
        RoleAssignment.objects.get_or_create(user=user, project=project, role=roles[role], inherited=False)
    RoleAssignment.objects.get_or_create(user=admin, domain=domain, role=roles["admin"], inherited=False)
    # Cloud-wide admin power: `admin` on the system (openstack --os-system-scope all), or on the admin project
    # (the `stratus` cloud of clouds.yaml). The service user reads every project's images as the system.
    for user in (admin, service):
        RoleAssignment.objects.get_or_create(user=user, system=True, role=roles["admin"], inherited=False)
    if not projects["admin"].is_admin_project:
        Project.objects.filter(is_admin_project=True).update(is_admin_project=False)
        Project.objects.filter(id=projects["admin"].id).update(is_admin_project=True)

    region, _ = Region.objects.get_or_create(id=settings.REGION)
    base = options["public_url"].rstrip("/")
    for service_type, name, path in CATALOG:
        service_row, _ = Service.objects.get_or_create(type=service_type, defaults={"name": name})
        for interface in ("public", "internal", "admin"):
            Endpoint.objects.update_or_create(
                service=service_row, interface=interface, region=region, defaults={"url": base + path})

    operator, _ = get_user_model().objects.get_or_create(
        username="admin", defaults={"is_staff": True, "is_superuser": True})
    if not operator.check_password(settings.ADMIN_PASSWORD):
        operator.set_password(settings.ADMIN_PASSWORD)
        operator.save()

    if options.get("clouds_yaml"):
        write_clouds_yaml(options["clouds_yaml"], base)
        out.write(f"identity: wrote {options['clouds_yaml']} (clouds stratus, stratus-system, stratus-demo)")
    out.write(f"identity: catalog at {base}, users admin and demo, projects admin and demo")


def write_clouds_yaml(path, base):
    def cloud(user, password, scope):
        return (f"    auth:\n      auth_url: {base}/identity\n      username: {user}\n"
                f"      password: {password}\n{scope}      user_domain_name: Default\n"
                f"    region_name: {settings.REGION}\n    interface: public\n    identity_api_version: 3\n")

    def project(name):
        return f"      project_name: {name}\n      project_domain_name: Default\n"

    system = "      system_scope: all\n"
    text = ("# Written by `manage.py bootstrap`: openstack --os-cloud stratus ...\nclouds:\n"
            f"  stratus:\n{cloud('admin', settings.ADMIN_PASSWORD, project('admin'))}"
            f"  stratus-system:\n{cloud('admin', settings.ADMIN_PASSWORD, system)}"
            f"  stratus-demo:\n{cloud('demo', settings.DEMO_PASSWORD, project('demo'))}")
    with open(path, "w") as handle:
        handle.write(text)
