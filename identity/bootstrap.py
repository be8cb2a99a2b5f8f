"""Identity's part of `manage.py bootstrap`. It runs on every `make up` /
`make start`: it creates what is missing and changes nothing an operator set
(passwords are set when their users are created, clouds.yaml is written when
it does not exist)."""
import os

from django.conf import settings
from django.contrib.auth import get_user_model

from identity import tokens
from identity.models import (
    DEFAULT_DOMAIN_ID, Domain, Endpoint, Project, Region, Role, RoleAssignment, Service, User,
)
from identity.passwords import hash_secret

# Keystone's bootstrap roles (manager: a domain's manager; service: what
# services' own users hold).
ROLES = ("admin", "manager", "member", "reader", "service")

# (type, name, path under the public URL)
CATALOG = [
    ("identity", "keystone", "/identity"),
    ("compute", "nova", "/compute/v2.1"),
    ("image", "glance", "/image"),
    ("network", "neutron", "/network"),
    ("block-storage", "cinder", "/volume/v3/$(project_id)s"),
    ("volumev3", "cinderv3", "/volume/v3/$(project_id)s"),
    ("object-store", "swift", "/object-store/v1/AUTH_$(project_id)s"),
]

SERVICE_USER = "stratus"


def _user(name, password, domain, project):
    """The user, created with `password` the first time only: a password an
    operator set since stays as it is, whatever the environment says now."""
    user, _ = User.objects.get_or_create(
        domain=domain, name=name, defaults={"password": hash_secret(password), "default_project": project})
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
    # save(), not update(): a project that stops being the admin project has its tokens revoked.
    for previous in Project.objects.filter(is_admin_project=True).exclude(id=projects["admin"].id):
        previous.is_admin_project = False
        previous.save(update_fields=["is_admin_project"])
    if not projects["admin"].is_admin_project:
        projects["admin"].is_admin_project = True
        projects["admin"].save(update_fields=["is_admin_project"])

    region, _ = Region.objects.get_or_create(id=settings.REGION)
    base = options["public_url"].rstrip("/")
    for service_type, name, path in CATALOG:
        service_row, _ = Service.objects.get_or_create(type=service_type, defaults={"name": name})
        for interface in ("public", "internal", "admin"):
            Endpoint.objects.update_or_create(
                service=service_row, interface=interface, region=region, defaults={"url": base + path})

    operators = get_user_model().objects
    if not operators.filter(username="admin").exists():  # the Django admin's operator: its password set once too
        operators.create_superuser(username="admin", email="", password=settings.ADMIN_PASSWORD)

    path = options.get("clouds_yaml")
    if path and os.path.exists(path):
        out.write(f"identity: kept {path} as it is (remove it to have it written again)")
    elif path:
        write_clouds_yaml(path, base)
        out.write(f"identity: wrote {path} (clouds stratus, stratus-system, stratus-demo)")
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
    write_secret(path, text)


def write_secret(path, text):
    """Writes a file only its owner can read (0600), from its first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file that already existed keeps its mode through O_CREAT
    with open(fd, "w") as handle:
        handle.write(text)
