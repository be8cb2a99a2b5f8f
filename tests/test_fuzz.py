"""No request produces a 500: every route of every API (found by walking the
URL configuration) is driven with malformed path ids, query parameters,
headers and bodies, and must answer below 500, a 4xx in its service's own
error format.

Three kinds of requests: random ones drawn by hypothesis (ids, query
parameters, headers, content types and bodies, valid bodies mutated), and,
since random draws rarely pair the one field with the one value that breaks
it, every query parameter a route reads, every field of its valid bodies
and every id in its path, each in turn given values of the wrong kind.

Requests go through Django's test client in-process against the bootstrapped
test database; the whole module runs inside one transaction that is rolled
back at its end, and each request inside a savepoint rolled back after it,
so what a request writes is never seen by another request or another test
(and nothing is committed, so no work is ever handed to a worker)."""
import ast
import copy
import functools
import json
import logging
import re
import sys
import uuid
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import transaction
from django.http import QueryDict
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

EXAMPLES_PER_ROUTE = 12

API_APPS = ("cloud", "identity", "compute", "images", "network", "volumes")
BASE_DIR = Path(settings.BASE_DIR)


# ---------------------------------------------------------------- the routes

def walk(resolver, prefix=""):
    """(regex of the whole path, view callback) for every route under resolver."""
    for pattern in resolver.url_patterns:
        regex = prefix + str(pattern.pattern.regex.pattern).lstrip("^")
        if isinstance(pattern, URLResolver):
            yield from walk(pattern, regex.rstrip("$"))
        elif isinstance(pattern, URLPattern):
            yield regex, pattern.callback


def methods_of(callback):
    """The HTTP methods a view answers (a viewset's from its action map)."""
    actions = getattr(callback, "actions", None)
    if actions:
        return sorted(set(actions) - {"options"})
    view = view_class(callback)
    return sorted(method for method in view.http_method_names if hasattr(view, method) and method != "options")


GROUP = re.compile(r"\(\?P<(\w+)>((?:[^()]|\([^()]*\))*)\)")


def template_of(regex):
    """A route's regex as a path with {name} placeholders, and for the
    groups that are a fixed alternation (projects|domains) their choices."""
    choices = {}

    def placeholder(match):
        name, body = match.groups()
        if re.fullmatch(r"[\w-]+(\|[\w-]+)*", body):
            choices[name] = body.split("|")
        return "{" + name + "}"

    path = GROUP.sub(placeholder, regex)
    path = path.replace("/?$", "").replace("$", "").replace("\\.", ".").lstrip("^")
    assert not re.search(r"[\\()\[\]^$?*+]", path), f"cannot turn {regex} into a path"
    return "/" + path, choices


def api_routes():
    routes = []
    for regex, callback in walk(get_resolver()):
        if not regex.split("/", 1)[0] in ("identity", "compute", "image", "network", "volume"):
            continue  # the Django admin is not an OpenStack API
        template, choices = template_of(regex)
        choices = tuple(sorted((name, tuple(values)) for name, values in choices.items()))
        for method in methods_of(callback):
            routes.append((method.upper(), template, choices, names_for(callback)))
    # A service root is routed both with and without its trailing slash.
    unique = {(method, template.rstrip("/") or "/"): (method, template, choices, names)
              for method, template, choices, names in routes}
    return sorted(unique.values())


# ------------------------------------------------- names read from the source

NAME = re.compile(r"[A-Za-z][\w:.\-]{0,40}")


@functools.cache
def literals_of(path):
    """The identifier-like string constants of a module: the query parameters
    and body keys its views read, among other words."""
    tree = ast.parse(Path(path).read_text())
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and NAME.fullmatch(node.value)}


def view_class(callback):
    return getattr(callback, "cls", None) or getattr(callback, "view_class", None)


def names_for(callback):
    """Words the route's own code (its view's module, its bases', its
    package's serializers and the shared pagination) can read from a request."""
    paths = {BASE_DIR / "cloud" / "pagination.py", BASE_DIR / "cloud" / "viewsets.py"}
    for cls in view_class(callback).__mro__:
        module = sys.modules.get(cls.__module__)
        if module and cls.__module__.split(".")[0] in API_APPS and getattr(module, "__file__", None):
            paths.add(Path(module.__file__))
            serializers = Path(module.__file__).with_name("serializers.py")
            if serializers.exists():
                paths.add(serializers)
    words = set()
    for path in paths:
        words |= literals_of(path)
    return tuple(sorted(words))


ROUTES = api_routes()


def test_the_walk_found_every_service_and_the_names_their_code_reads():
    names = {(method, template.rstrip("/")): set(words) for method, template, _, words in ROUTES}
    assert {template.split("/")[1] for _, template in names} >= {"identity", "compute", "image"}
    assert len(names) > 100
    assert {"changes-since", "limit", "marker", "name", "image", "flavor", "server", "imageRef"} <= names[
        ("GET", "/compute/v2.1/servers/detail")] & names[("POST", "/compute/v2.1/servers")]
    assert {"rxtx_factor", "description", "minDisk", "is_public"} <= names[("POST", "/compute/v2.1/flavors")]
    assert {"visibility", "member_status", "sort_key", "sort_dir", "tag"} <= names[("GET", "/image/v2/images")]
    assert {"name", "enabled", "domain_id", "project"} <= names[("GET", "/identity/v3/projects")]


# --------------------------------------------------------------- the cloud

class Cloud:
    """Valid ids of real rows per path parameter, two tokens, valid bodies
    per route to start mutating from, and the query parameters each route
    was seen to read."""

    def __init__(self, client):
        self.client = client
        self.ids = {}
        self.tokens = {}
        self.seeds = {}
        self.query_names = {}

    def call(self, method, path, token, body=None, headers=None):
        response = self.client.generic(method, path, json.dumps(body) if body is not None else "",
                                       content_type="application/json",
                                       headers={"X-Auth-Token": token, **(headers or {})})
        assert response.status_code < 300, (method, path, response.status_code, response.content[:500])
        return response.json() if response.content else None

    def issue(self, user, password, project):
        response = self.client.post("/identity/v3/auth/tokens", json.dumps({"auth": {
            "identity": {"methods": ["password"], "password": {
                "user": {"name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}),
            content_type="application/json")
        assert response.status_code == 201, response.content
        return response["X-Subject-Token"], response.json()["token"]


def seed_bodies(admin_token, demo_project, admin_project, demo_user, role, region, service, keypair, host, image,
                server_group):
    """Valid bodies per (method, route): a mutation of one field of a valid
    body reaches the check of that field, where a random body stops at the
    first field it lacks."""
    password = {"user": {"name": "admin", "domain": {"id": "default"}, "password": settings.ADMIN_PASSWORD}}
    flavor = {"name": "fz", "ram": 128, "vcpus": 1, "disk": 1, "id": "fz", "swap": 0, "rxtx_factor": 1.0,
              "OS-FLV-EXT-DATA:ephemeral": 0, "os-flavor-access:is_public": True, "description": "d"}
    server = {"name": "fz", "imageRef": image, "flavorRef": "42", "networks": "none", "metadata": {"a": "b"},
              "key_name": keypair["name"], "min_count": 1, "max_count": 1, "availability_zone": "nova",
              "user_data": "aGk=", "adminPass": "pw", "description": "d",
              "block_device_mapping_v2": [{"boot_index": 0, "uuid": image, "source_type": "image",
                                           "destination_type": "local"}],
              "security_groups": [{"name": "default"}]}
    actions = [{"reboot": {"type": "SOFT"}}, {"os-stop": None}, {"os-start": None}, {"pause": None},
               {"resize": {"flavorRef": "1"}}, {"confirmResize": None}, {"revertResize": None},
               {"rebuild": {"imageRef": image, "name": "fz", "adminPass": "pw", "metadata": {}}},
               {"lock": None}, {"unlock": None}, {"os-getConsoleOutput": {"length": 10}},
               {"os-resetState": {"state": "active"}}, {"os-getVNCConsole": {"type": "novnc"}},
               {"createImage": {"name": "fz", "metadata": {}}}]
    image_body = {"name": "fz", "disk_format": "qcow2", "container_format": "bare", "visibility": "private",
                  "min_disk": 1, "min_ram": 1, "protected": False, "tags": ["a"], "os_hidden": False,
                  "id": str(uuid.uuid4()), "os_distro": "debian"}
    seeds = {
        ("POST", "/identity/v3/auth/tokens"): [
            {"auth": {"identity": {"methods": ["password"], "password": password},
                      "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}},
            {"auth": {"identity": {"methods": ["token"], "token": {"id": admin_token}},
                      "scope": {"project": {"id": demo_project}}}},
            {"auth": {"identity": {"methods": ["password"], "password": password},
                      "scope": {"domain": {"id": "default"}}}},
            {"auth": {"identity": {"methods": ["application_credential"], "application_credential": {
                "id": "x", "secret": "s", "name": "n", "user": {"id": demo_user}}}}}],
        ("POST", "/identity/v3/domains"): [{"domain": {"name": "fz", "description": "d", "enabled": False}}],
        ("POST", "/identity/v3/projects"): [{"project": {"name": "fz", "domain_id": "default", "description": "d",
                                                         "enabled": True, "parent_id": admin_project,
                                                         "is_domain": False, "tags": ["a"]}}],
        ("POST", "/identity/v3/users"): [{"user": {"name": "fz", "password": "pw", "domain_id": "default",
                                                   "default_project_id": demo_project, "enabled": True,
                                                   "email": "a@b.c", "description": "d"}}],
        ("POST", "/identity/v3/users/{pk}/password"): [{"user": {"password": "new", "original_password": "old"}}],
        ("POST", "/identity/v3/groups"): [{"group": {"name": "fz", "description": "d", "domain_id": "default"}}],
        ("POST", "/identity/v3/roles"): [{"role": {"name": "fz", "description": "d", "domain_id": None}}],
        ("POST", "/identity/v3/regions"): [{"region": {"id": "fz", "description": "d", "parent_region_id": region}}],
        ("POST", "/identity/v3/services"): [{"service": {"type": "fz", "name": "fz", "description": "d",
                                                         "enabled": True}}],
        ("POST", "/identity/v3/endpoints"): [{"endpoint": {"interface": "public", "service_id": service,
                                                           "url": "http://fz", "region_id": region,
                                                           "enabled": True}}],
        ("POST", "/identity/v3/users/{user_id}/application_credentials"): [{"application_credential": {
            "name": "fz", "description": "d", "expires_at": "2099-01-01T00:00:00", "roles": [{"id": role}],
            "unrestricted": False, "secret": "s", "access_rules": []}}],
        ("POST", "/compute/v2.1/flavors"): [{"flavor": flavor}],
        ("PUT", "/compute/v2.1/flavors/{flavor_id}"): [{"flavor": {"description": "d"}}],
        ("POST", "/compute/v2.1/flavors/{flavor_id}/os-extra_specs"): [{"extra_specs": {"k": "v"}}],
        ("PUT", "/compute/v2.1/flavors/{flavor_id}/os-extra_specs/{key}"): [{"hw:cpu_policy": "dedicated"}],
        ("POST", "/compute/v2.1/flavors/{flavor_id}/action"): [{"addTenantAccess": {"tenant": demo_project}},
                                                                {"removeTenantAccess": {"tenant": demo_project}}],
        ("POST", "/compute/v2.1/os-keypairs"): [{"keypair": {"name": "fz", "public_key": keypair["public_key"],
                                                             "type": "ssh", "user_id": demo_user}}],
        ("PUT", "/compute/v2.1/os-quota-sets/{project_id}"): [{"quota_set": {
            "instances": 10, "cores": 20, "ram": 51200, "key_pairs": 10, "metadata_items": 128,
            "server_groups": 10, "server_group_members": 10, "force": True}}],
        ("PUT", "/compute/v2.1/os-services/{service_id}"): [
            {"status": "disabled", "disabled_reason": "r"}, {"forced_down": True}, {"status": "enabled"}],
        ("POST", "/compute/v2.1/os-aggregates"): [{"aggregate": {"name": "fz", "availability_zone": "z"}}],
        ("PUT", "/compute/v2.1/os-aggregates/{aggregate_id}"): [{"aggregate": {"name": "fz",
                                                                               "availability_zone": "z"}}],
        ("POST", "/compute/v2.1/os-aggregates/{aggregate_id}/action"): [
            {"add_host": {"host": host}}, {"remove_host": {"host": host}},
            {"set_metadata": {"metadata": {"k": "v", "availability_zone": "z"}}}],
        ("POST", "/compute/v2.1/servers"): [{"server": server, "OS-SCH-HNT:scheduler_hints": {"group": server_group}}],
        ("PUT", "/compute/v2.1/servers/{server_id}"): [{"server": {"name": "fz", "description": "d"}}],
        ("POST", "/compute/v2.1/servers/{server_id}/action"): actions,
        ("POST", "/compute/v2.1/servers/{server_id}/remote-consoles"): [
            {"remote_console": {"protocol": "vnc", "type": "novnc"}}],
        ("POST", "/compute/v2.1/servers/{server_id}/metadata"): [{"metadata": {"k": "v"}}],
        ("PUT", "/compute/v2.1/servers/{server_id}/metadata/{key}"): [{"meta": {"fuzz": "v"}}],
        ("POST", "/compute/v2.1/os-server-groups"): [
            {"server_group": {"name": "fz", "policies": ["affinity"]}},
            {"server_group": {"name": "fz", "policy": "anti-affinity", "rules": {"max_server_per_host": 2}}}],
        ("POST", "/image/v2/images"): [image_body],
        ("PATCH", "/image/v2/images/{pk}"): [[{"op": "replace", "path": "/name", "value": "n"},
                                              {"op": "add", "path": "/tags", "value": ["t"]},
                                              {"op": "add", "path": "/os_distro", "value": "x"},
                                              {"op": "remove", "path": "/os_distro"}]],
        ("POST", "/image/v2/images/{image_id}/members"): [{"member": demo_project}],
        ("PUT", "/image/v2/images/{image_id}/members/{member}"): [{"status": "accepted"}],
    }
    for kind in ("domain", "project", "user", "group", "role", "region", "service", "endpoint"):
        seeds[("PATCH", f"/identity/v3/{kind}s/{{pk}}")] = [
            {kind: {key: value for key, value in seeds[("POST", f"/identity/v3/{kind}s")][0][kind].items()
                    if key != "id"}}]
    seeds[("PATCH", "/identity/v3/users/{user_id}/application_credentials/{pk}")] = [
        {"application_credential": {"name": "fz", "description": "d"}}]
    seeds[("PUT", "/compute/v2.1/os-quota-sets/{project_id}/detail")] = seeds[
        ("PUT", "/compute/v2.1/os-quota-sets/{project_id}")]
    seeds[("PUT", "/compute/v2.1/servers/{server_id}/metadata")] = seeds[
        ("POST", "/compute/v2.1/servers/{server_id}/metadata")]
    return seeds


def make_network_rows(cloud, admin, demo):
    """A network with a subnet, a port and a security group with a rule, a
    router, and an external network with a floating IP."""
    net = "/network/v2.0"
    network = cloud.call("POST", f"{net}/networks", demo, {"network": {"name": "fz"}})["network"]["id"]
    subnet = cloud.call("POST", f"{net}/subnets", demo, {"subnet": {
        "network_id": network, "cidr": "10.99.0.0/24", "ip_version": 4, "name": "fz"}})["subnet"]["id"]
    group = cloud.call("POST", f"{net}/security-groups", demo, {"security_group": {"name": "fz"}})
    group = group["security_group"]["id"]
    rule = cloud.call("POST", f"{net}/security-group-rules", demo, {"security_group_rule": {
        "security_group_id": group, "direction": "ingress", "protocol": "tcp", "port_range_min": 22,
        "port_range_max": 22, "ethertype": "IPv4", "remote_ip_prefix": "0.0.0.0/0"}})["security_group_rule"]["id"]
    port = cloud.call("POST", f"{net}/ports", demo, {"port": {"network_id": network, "name": "fz"}})["port"]["id"]
    external = cloud.call("POST", f"{net}/networks", admin, {"network": {
        "name": "fz-ext", "router:external": True, "shared": True}})["network"]["id"]
    cloud.call("POST", f"{net}/subnets", admin, {"subnet": {
        "network_id": external, "cidr": "203.0.113.0/24", "ip_version": 4, "name": "fz-ext"}})
    router = cloud.call("POST", f"{net}/routers", demo, {"router": {"name": "fz"}})["router"]["id"]
    floating_ip = cloud.call("POST", f"{net}/floatingips", demo, {"floatingip": {
        "floating_network_id": external}})["floatingip"]["id"]
    for kind, row in (("networks", network), ("subnets", subnet), ("ports", port), ("routers", router),
                      ("security-groups", group), ("floatingips", floating_ip)):
        cloud.call("PUT", f"{net}/{kind}/{row}/tags/fuzz", demo)
    return {"network": network, "subnet": subnet, "port": port, "security_group": group, "rule": rule,
            "external": external, "router": router, "floating_ip": floating_ip}


def network_seeds(rows, demo_project):
    net = "/network/v2.0"
    network = {"name": "fz", "admin_state_up": True, "shared": False, "mtu": 1450, "description": "d",
               "port_security_enabled": True}
    subnet = {"network_id": rows["network"], "cidr": "10.98.0.0/24", "ip_version": 4, "name": "fz",
              "gateway_ip": "10.98.0.1", "enable_dhcp": True,
              "allocation_pools": [{"start": "10.98.0.10", "end": "10.98.0.20"}], "dns_nameservers": ["8.8.8.8"],
              "host_routes": [{"destination": "10.0.0.0/8", "nexthop": "10.98.0.1"}]}
    port = {"network_id": rows["network"], "name": "fz", "admin_state_up": True, "mac_address": "fa:16:3e:00:00:01",
            "fixed_ips": [{"subnet_id": rows["subnet"], "ip_address": "10.99.0.50"}],
            "security_groups": [rows["security_group"]], "device_owner": "", "device_id": "",
            "allowed_address_pairs": [{"ip_address": "10.99.0.60"}]}
    router = {"name": "fz", "admin_state_up": True, "external_gateway_info": {"network_id": rows["external"]}}
    group = {"name": "fz2", "description": "d"}
    rule = {"security_group_id": rows["security_group"], "direction": "egress", "protocol": "udp",
            "port_range_min": 53, "port_range_max": 53, "ethertype": "IPv4", "remote_ip_prefix": "10.0.0.0/8"}
    floating_ip = {"floating_network_id": rows["external"], "port_id": rows["port"], "description": "d"}
    seeds = {}
    for kind, member, body, changes in (
            ("networks", "network", network, {"name": "fz2", "description": "d", "admin_state_up": False}),
            ("subnets", "subnet", subnet, {"name": "fz", "dns_nameservers": ["1.1.1.1"], "enable_dhcp": False,
                                           "gateway_ip": "10.99.0.254"}),
            ("ports", "port", port, {"name": "fz", "security_groups": [rows["security_group"]],
                                     "fixed_ips": [{"subnet_id": rows["subnet"]}]}),
            ("routers", "router", router, {"name": "fz", "routes": [{"destination": "10.1.0.0/16",
                                                                     "nexthop": "10.99.0.9"}]}),
            ("security-groups", "security_group", group, {"name": "fz", "description": "d"}),
            ("security-group-rules", "security_group_rule", rule, {"description": "d"}),
            ("floatingips", "floatingip", floating_ip, {"port_id": None, "description": "d"})):
        seeds[("POST", f"{net}/{kind}")] = [{member: body}]
        seeds[("PUT", f"{net}/{kind}/{{pk}}")] = seeds[("PATCH", f"{net}/{kind}/{{pk}}")] = [{member: changes}]
        seeds[("PUT", f"{net}/{kind}/{{pk}}/tags")] = [{"tags": ["a", "b"]}]
    seeds[("PUT", f"{net}/routers/{{pk}}/add_router_interface")] = [{"subnet_id": rows["subnet"]},
                                                                    {"port_id": rows["port"]}]
    seeds[("PUT", f"{net}/routers/{{pk}}/remove_router_interface")] = [{"subnet_id": rows["subnet"]}]
    seeds[("PUT", f"{net}/quotas/{{project_id}}")] = [{"quota": {
        "network": 10, "subnet": 10, "port": 50, "router": 10, "floatingip": 10, "security_group": 10,
        "security_group_rule": 100}}]
    return seeds


def make_rows(cloud):
    """One real row of each kind a path names, made through the APIs (the ORM
    for what only a compute node makes)."""
    from compute.models import ComputeNode, Instance, InstanceAction, Service, VmState

    admin, admin_body = cloud.issue("admin", settings.ADMIN_PASSWORD, "admin")
    demo, demo_body = cloud.issue("demo", settings.DEMO_PASSWORD, "demo")
    cloud.tokens = {"admin": admin, "demo": demo}
    admin_project, demo_project = admin_body["project"]["id"], demo_body["project"]["id"]
    admin_user, demo_user = admin_body["user"]["id"], demo_body["user"]["id"]
    role = admin_body["roles"][0]["id"]
    suffix = uuid.uuid4().hex[:8]

    group = cloud.call("POST", "/identity/v3/groups", admin, {"group": {"name": f"fuzz-{suffix}"}})["group"]["id"]
    credential = cloud.call("POST", f"/identity/v3/users/{demo_user}/application_credentials", demo,
                            {"application_credential": {"name": f"fuzz-{suffix}"}})["application_credential"]["id"]
    catalog = cloud.call("GET", "/identity/v3/endpoints", admin)["endpoints"]
    region = cloud.call("GET", "/identity/v3/regions", admin)["regions"][0]["id"]

    cloud.call("POST", "/compute/v2.1/flavors/42/os-extra_specs", admin, {"extra_specs": {"hw:cpu_policy": "shared"}})
    keypair = cloud.call("POST", "/compute/v2.1/os-keypairs", demo, {"keypair": {"name": f"fuzz-{suffix}"}})
    aggregate = cloud.call("POST", "/compute/v2.1/os-aggregates", admin,
                           {"aggregate": {"name": f"fuzz-{suffix}"}})["aggregate"]["id"]
    server_group = cloud.call("POST", "/compute/v2.1/os-server-groups", demo, {
        "server_group": {"name": f"fuzz-{suffix}", "policies": ["anti-affinity"]}})["server_group"]["id"]
    node = ComputeNode.objects.create(host=f"fuzz-{suffix}", hypervisor_uri="test:///default",
                                      hypervisor_hostname=f"fuzz-{suffix}", heartbeat_at=timezone.now())
    service = Service.objects.create(host=node.host, binary="stratus-compute")
    instance = Instance.objects.create(name="fuzz", project_id=demo_project, user_id=demo_user,
                                       flavor_id_at_boot="42", flavor_name="m1.nano", vcpus=1, memory_mb=128,
                                       root_gb=1, host=node.host, node=node, vm_state=VmState.ACTIVE,
                                       metadata={"fuzz": "yes"})
    action = InstanceAction.objects.create(instance=instance, action="create", request_id=f"req-{uuid.uuid4()}",
                                           user_id=demo_user, project_id=demo_project)

    image = cloud.call("POST", "/image/v2/images", admin, {
        "name": f"fuzz-{suffix}", "disk_format": "qcow2", "container_format": "bare", "visibility": "shared",
        "tags": ["fuzz"]})["id"]
    cloud.call("POST", f"/image/v2/images/{image}/members", admin, {"member": demo_project})
    bootable = cloud.call("POST", "/image/v2/images", admin, {
        "name": f"fuzz-active-{suffix}", "disk_format": "raw", "container_format": "bare",
        "visibility": "public"})["id"]
    uploaded = cloud.client.put(f"/image/v2/images/{bootable}/file", bytes(2**16),
                                content_type="application/octet-stream", headers={"X-Auth-Token": admin})
    assert uploaded.status_code == 204, uploaded.content

    network = make_network_rows(cloud, admin, demo)
    cloud.seeds = seed_bodies(admin, demo_project, admin_project, demo_user, role, region, catalog[0]["service_id"],
                              keypair["keypair"], node.host, bootable, server_group)
    cloud.ids = {
        "pk": [admin_project, demo_project, admin_user, demo_user, group, role, "default", region, image, bootable,
               credential] + [endpoint["id"] for endpoint in catalog[:1]] + [catalog[0]["service_id"]],
        "target_id": [admin_project, demo_project, "default"],
        "actor_id": [admin_user, demo_user, group],
        "role_id": [role],
        "user_id": [admin_user, demo_user],
        "group_id": [group, server_group],  # an identity group, a compute server group
        "flavor_id": ["42", "1"],
        "key": ["hw:cpu_policy", "fuzz"],
        "name": [keypair["keypair"]["name"], "image", "images", "member", "members"],
        "project_id": [admin_project, demo_project],
        "service_id": [str(service.pk)],
        "aggregate_id": [str(aggregate)],
        "hypervisor_id": [str(node.pk)],
        "server_id": [str(instance.id)],
        "request_id": [action.request_id],
        "image_id": [image, bootable],
        "member": [demo_project],
        "tag": ["fuzz"],
        "network_id": [network["network"]],
        "alias": ["router"],
    }
    cloud.ids["pk"] += list(network.values())
    cloud.ids.update({
        "projects": [admin_project, demo_project], "users": [admin_user, demo_user], "groups": [group],
        "roles": [role], "domains": ["default"], "regions": [region], "services": [catalog[0]["service_id"]],
        "endpoints": [catalog[0]["id"]], "application_credentials": [credential], "images": [image, bootable],
        "networks": [network["network"], network["external"]], "subnets": [network["subnet"]],
        "ports": [network["port"]], "routers": [network["router"]], "security-groups": [network["security_group"]],
        "security-group-rules": [network["rule"]], "floatingips": [network["floating_ip"]],
        "os-server-groups": [server_group], "members": [demo_project], "os-keypairs": [keypair["keypair"]["name"]],
    })
    for key, seeds in network_seeds(network, demo_project).items():
        cloud.seeds.setdefault(key, seeds)


@pytest.fixture(scope="module")
def cloud(django_db_setup, django_db_blocker):
    """A bootstrapped cloud with one row of each kind, all rolled back at the
    end; the image files written meanwhile are removed. (In this module it
    stands in for conftest's live server: requests are served in-process.)"""
    store = settings.IMAGE_STORE_DIR
    stored_before = set(store.iterdir()) if store.exists() else set()
    with django_db_blocker.unblock():
        with transaction.atomic():
            call_command("bootstrap", public_url="http://testserver", clouds_yaml="")
            made = Cloud(Client(raise_request_exception=True))
            make_rows(made)
            learn_query_names(made)
            yield made
            transaction.set_rollback(True)
    for path in (set(store.iterdir()) if store.exists() else set()) - stored_before:
        path.unlink()


def first_path(template, choices, cloud):
    """The route's path with a valid id (or the first choice) for each part."""
    def part(match):
        name = match.group(1)
        return choices[name][0] if name in choices else quote((valid_ids(template, match, cloud) or ["x"])[0], safe="")

    return re.sub(r"\{(\w+)\}", part, template)


def valid_ids(template, match, cloud):
    """Ids of real rows for a path parameter: those of its collection (the
    segment before it) where known, else those of its name."""
    collection = template[:match.start()].rstrip("/").rsplit("/", 1)[-1]
    return cloud.ids.get(collection) or cloud.ids.get(match.group(1)) or []


def learn_query_names(cloud):
    """Which query parameters each route reads: one valid request per route
    and token, with every lookup in the query string recorded."""
    seen = set()
    lookups = {name: getattr(QueryDict, name) for name in ("__getitem__", "__contains__", "get", "getlist")}

    def recording(lookup):
        def record(self, key, *args, **kwargs):
            seen.add(key)
            return lookup(self, key, *args, **kwargs)
        return record

    for name, lookup in lookups.items():
        setattr(QueryDict, name, recording(lookup))
    try:
        for method, template, choices, _ in ROUTES:
            seen.clear()
            path = first_path(template, dict(choices), cloud)
            body = (cloud.seeds.get((method, template)) or [None])[0]
            for token in cloud.tokens.values():
                send(cloud, (method, path, "", {"X-Auth-Token": token, **PROBE_HEADERS},
                             json.dumps(body).encode() if body is not None else None, "application/json"))
            cloud.query_names[(method, template)] = tuple(sorted(key for key in seen if isinstance(key, str)))
    finally:
        for name, lookup in lookups.items():
            setattr(QueryDict, name, lookup)


# The newest microversion, so that the probe reaches every filter.
PROBE_HEADERS = {"OpenStack-API-Version": "compute 2.60"}


class Failures(logging.Handler):
    """What the API logged about the exception behind a 500."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records = []

    def emit(self, record):
        self.records.append(self.format(record))


@pytest.fixture(scope="module")
def logged_failures():
    handler = Failures()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("cloud.api")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


# ------------------------------------------------------------ the strategies

MALFORMED_IDS = [
    "not-a-uuid", "00000000-0000-0000-0000-000000000000", "9" * 40, "1" * 400, "-1", "0", "1e400", "nan",
    "ünïcødé☃", "\U0001f4a9", "\x00", "%00", "a\x00b", "..", "../etc", "..%2F..", "%", "\\", "' OR '1'='1",
    "{}", "[]", "null", "true", " ", "a b", "a\tb", "~", "*", ".*", "(", "x" * 256,
]

GARBAGE_VALUES = [
    "", " ", "2020-13-01T00:00:00", "2020-02-30", "not-a-date", "2020-01-01T25:61:61Z", "0000-00-00",
    "99999-01-01", "-1", "0", "1", "1.5", "9" * 40, "1e400", "-9223372036854775809", "NaN", "inf", "0x10",
    "true", "false", "None", "null", "yes", "[", "(", "(?P<", "a{2,1}", "*", "+", "\\", "[[:alpha:]", "(?i)x",
    "(?<=a)b", "\\p{L}", "x**", "%", "_", "in:", "in:a,b", "gt:x", "lte:", "neq:", "asc", "desc", "name:bogus",
    "name:asc,", ",,,", "ünïcødé☃", "\x00", "a\x00b", "' OR 1=1--", "x" * 5000, "changes-since",
]

printable = st.characters(min_codepoint=32, max_codepoint=255, blacklist_categories=("Cs",))
short_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
query_value = st.one_of(st.sampled_from(GARBAGE_VALUES), short_text, st.integers().map(str))

json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(GARBAGE_VALUES), short_text)


def json_values(keys):
    return st.recursive(json_leaf, lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(keys, children, max_size=4)), max_leaves=8)


HEADER_CHOICES = {
    "OpenStack-API-Version": st.one_of(
        st.sampled_from(["compute 2.1", "compute 2.60", "compute 2.100", "compute 2.999", "compute 3.0",
                         "compute latest", "compute abc", "compute 2.", "compute -2.1", "compute 2.1.1",
                         "compute", "image 2.0", "volume 3.0", "identity 3.14", "", "garbage", "compute 2.9" * 40]),
        st.text(printable, max_size=30)),
    "X-OpenStack-Nova-API-Version": st.sampled_from(["2.1", "2.99999999999999999999", "latest", "x", ""]),
    "Accept": st.sampled_from(["application/json", "application/xml", "text/html", "*/*", "garbage", ""]),
    "X-Subject-Token": st.one_of(st.sampled_from(["", "garbage", "gAAAAA" + "A" * 200]), st.text(printable, max_size=40)),
    "Range": st.sampled_from(["bytes=0-1", "bytes=5-1", "bytes=abc", "bytes=-0", "bytes=99999999999-", "x"]),
    "Content-Range": st.sampled_from(["bytes 0-1/2", "bytes */*", "garbage"]),
    "X-Image-Meta-Size": st.sampled_from(["-1", "x", "9" * 30]),
    "If-None-Match": st.sampled_from(["*", "garbage"]),
}

CONTENT_TYPES = [
    "application/json", "application/json; charset=latin-1", "application/json; charset=bogus", "text/plain",
    "application/xml", "application/octet-stream", "multipart/form-data", "application/x-www-form-urlencoded",
    "application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch",
    "application/json-patch+json", "", "garbage",
]


@st.composite
def bodies(draw, names):
    """(bytes or None, content type)."""
    keys = st.sampled_from(names)
    kind = draw(st.sampled_from(["none", "raw", "json", "envelope", "patch"]))
    content_type = draw(st.sampled_from(CONTENT_TYPES)) if draw(st.booleans()) else "application/json"
    if kind == "none":
        return None, content_type
    if kind == "raw":
        raw = draw(st.one_of(st.binary(max_size=40), st.sampled_from(
            [b"{", b"[1,", b"nul", b'{"a": 1e999999}', b"\xff\xfe", b'"\\ud800"', b"{}" * 3, b"1" * 5000,
             b'{"a":' * 600 + b"1" + b"}" * 600, b"[" * 5000 + b"]" * 5000])))
        return raw, content_type
    if kind == "json":
        value = draw(json_values(keys))
    elif kind == "envelope":
        value = {draw(keys): draw(st.one_of(
            st.dictionaries(keys, json_values(keys), max_size=5), json_values(keys)))}
    else:
        value = draw(st.lists(st.fixed_dictionaries({
            "op": st.sampled_from(["add", "replace", "remove", "move", "copy", "test", "bogus"]),
            "path": st.one_of(st.sampled_from(["/name", "/tags", "/tags/-", "/visibility", "/min_ram", "/id",
                                               "/status", "/x", "", "/", "name", "/a/b/c"]),
                              keys.map(lambda key: "/" + key)),
        }, optional={"value": json_values(keys), "from": st.sampled_from(["/name", "/x", ""])}), max_size=3))
    return json.dumps(value).encode(), content_type


def paths_in(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths_in(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths_in(item, prefix + (index,))


def at(value, path):
    for step in path:
        value = value[step]
    return value


@st.composite
def mutated(draw, seed, keys):
    """A valid body with a few of its parts replaced by garbage, removed,
    or joined by unknown keys."""
    value = copy.deepcopy(seed)
    garbage = st.one_of(json_leaf, json_values(keys), st.sampled_from(
        [{}, [], "", None, -1, 0, 2**64, -(2**63) - 1, 1e308, 1.5, True, "x" * 300, [None], {"": None}]))
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(list(paths_in(value))))
        operation = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add"]))
        if not path:
            if operation == "replace":
                value = draw(garbage)
            continue
        parent, last = at(value, path[:-1]), path[-1]
        if operation == "replace":
            parent[last] = draw(garbage)
        elif operation == "delete":
            del parent[last]
        elif isinstance(parent, dict):
            parent[draw(keys)] = draw(garbage)
        else:
            parent.insert(last, draw(garbage))
    return value


@st.composite
def requests_for(draw, method, template, choices, names, cloud):
    def segment(match):
        name = match.group(1)
        if name in choices:
            return draw(st.sampled_from(choices[name]))
        valid = valid_ids(template, match, cloud)
        if valid and draw(st.integers(0, 2)):
            return quote(draw(st.sampled_from(valid)), safe="")
        return quote(draw(st.one_of(st.sampled_from(MALFORMED_IDS), short_text.filter(bool))), safe="")

    path = re.sub(r"\{(\w+)\}", segment, template)
    if draw(st.booleans()):
        path += "/"
    learned = cloud.query_names.get((method, template))
    query_names = st.one_of(st.sampled_from(learned), st.sampled_from(learned), st.sampled_from(names)) \
        if learned else st.sampled_from(names)
    pairs = draw(st.lists(st.tuples(query_names, query_value), max_size=4))
    if pairs and draw(st.booleans()):  # the same parameter twice, as a list
        pairs.append(pairs[0])
    query = urlencode(pairs, quote_via=quote)
    token = draw(st.sampled_from(["admin", "admin", "demo", "demo", "none", "garbage"]))
    headers = {}
    if token in cloud.tokens:
        headers["X-Auth-Token"] = cloud.tokens[token]
    elif token == "garbage":
        headers["X-Auth-Token"] = draw(st.one_of(st.sampled_from(["x", "gAAAAA" + "B" * 180, cloud.tokens["admin"][:-4]]),
                                                 st.text(printable, min_size=1, max_size=40)))
    for name in draw(st.lists(st.sampled_from(sorted(HEADER_CHOICES)), max_size=3, unique=True)):
        headers[name] = draw(HEADER_CHOICES[name])
    seeds = cloud.seeds.get((method, template))
    if seeds and draw(st.integers(0, 2)):
        body = json.dumps(draw(mutated(draw(st.sampled_from(seeds)), st.sampled_from(names)))).encode()
        content_type = draw(st.sampled_from(["application/json", "application/json",
                                             "application/openstack-images-v2.1-json-patch", "text/plain"]))
    else:
        body, content_type = draw(bodies(names))
    return method, path, query, headers, body, content_type


# ---------------------------------------------------------- what must hold

def assert_error_format(service, status, body):
    """The error envelope each service's clients parse."""
    if service in ("compute", "volume"):
        assert len(body) == 1, body
        (fault,) = body.values()
        assert fault["code"] == status and isinstance(fault["message"], str), body
    elif service == "network":
        error = body["NeutronError"]
        assert isinstance(error["type"], str) and isinstance(error["message"], str), body
    elif service == "image":
        assert body["code"].startswith(f"{status} ") and isinstance(body["message"], str), body
        assert isinstance(body["title"], str), body
    else:
        error = body["error"]
        assert error["code"] == status and isinstance(error["message"], str), body
        assert isinstance(error["title"], str), body


# Nova answers 501 where a hypervisor cannot tell (os-hypervisors/{id}/uptime
# of a node that does not report it); that is its wire format, not a failure.
DELIBERATE_5XX = {501}


def error_message(service, body):
    if service in ("compute", "volume"):
        return next(iter(body.values()))["message"]
    if service == "network":
        return body["NeutronError"]["message"]
    return body["message"] if service == "image" else body["error"]["message"]


def send(cloud, request):
    method, path, query, headers, body, content_type = request
    url = f"{path}?{query}" if query else path
    with transaction.atomic():
        response = cloud.client.generic(method, url, body or b"", content_type=content_type, headers=headers)
        transaction.set_rollback(True)
    return response


@pytest.mark.parametrize("method, template, choices, names", ROUTES, ids=[f"{m} {t}" for m, t, _, _ in ROUTES])
def test_no_request_is_a_5xx_and_errors_are_in_the_services_format(cloud, logged_failures, method, template,
                                                                    choices, names):
    choices = dict(choices)

    @hypothesis_settings(max_examples=EXAMPLES_PER_ROUTE, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck), print_blob=False)
    @given(st.data())
    def fuzz(data):
        request = data.draw(requests_for(method, template, choices, names, cloud), label="request")
        del logged_failures.records[:]
        response = send(cloud, request)
        failure = "\n".join(logged_failures.records)
        assert response.status_code < 500 or response.status_code in DELIBERATE_5XX, (
            f"{response.status_code}: {response.content[:500]!r}\n{failure}")
        if response.status_code >= 400 and method != "HEAD":
            assert_error_format(template.split("/")[1], response.status_code, json.loads(response.content))

    fuzz()


# ------------------------------------- every field and parameter, one by one
# Random draws rarely pair the one field with the one value that breaks it;
# these walk every query parameter a route reads and every field of its
# valid bodies, each with a few values of the wrong kind.

QUERY_GARBAGE = ["2020-13-01T00:00:00", "gt:2020-13-01T00:00:00", "not-a-date", "-1", "9" * 30, "abc",
                 "[[:alpha:]", "in:,"]
FIELD_GARBAGE = ["abc AAAA==", -1, 2**64, None, {}, ["x"]]


def problem(cloud, logged_failures, method, template, request):
    """What is wrong with the answer to request, or None."""
    del logged_failures.records[:]
    response = send(cloud, request)
    where = f"{method} {request[1]}?{request[2]} {request[4][:300] if request[4] else ''}"
    if response.status_code >= 500 and response.status_code not in DELIBERATE_5XX:
        cause = logged_failures.records[-1].splitlines()[-1] if logged_failures.records else ""
        return f"{where} -> {response.status_code} {cause}"
    if response.status_code >= 400 and method != "HEAD":
        try:
            assert_error_format(template.split("/")[1], response.status_code, json.loads(response.content))
        except (AssertionError, KeyError, TypeError, ValueError):
            return f"{where} -> {response.status_code} not in the service's error format: {response.content[:200]!r}"
    return None


@pytest.mark.parametrize("method, template, choices, names", [route for route in ROUTES if route[0] == "GET"],
                         ids=[f"{m} {t}" for m, t, _, _ in ROUTES if m == "GET"])
def test_every_query_parameter_a_route_reads_refuses_garbage_below_500(cloud, logged_failures, method, template,
                                                                        choices, names):
    path = first_path(template, dict(choices), cloud)
    headers = {"X-Auth-Token": cloud.tokens["admin"], **PROBE_HEADERS}
    problems = [problem(cloud, logged_failures, method, template,
                        (method, path, urlencode({name: value}), headers, None, "application/json"))
                for name in cloud.query_names[(method, template)] for value in QUERY_GARBAGE]
    assert not [found for found in problems if found], "\n".join(found for found in problems if found)


BODY_ROUTES = [route for route in ROUTES if route[0] in ("POST", "PUT", "PATCH")]


@pytest.mark.parametrize("method, template, choices, names", BODY_ROUTES,
                         ids=[f"{m} {t}" for m, t, _, _ in BODY_ROUTES])
def test_every_field_of_a_valid_body_refuses_garbage_below_500(cloud, logged_failures, method, template, choices,
                                                               names):
    path = first_path(template, dict(choices), cloud)
    headers = {"X-Auth-Token": cloud.tokens["admin"], **PROBE_HEADERS}
    content_type = "application/openstack-images-v2.1-json-patch" if method == "PATCH" and "/image/" in template \
        else "application/json"
    problems = []
    for seed in cloud.seeds.get((method, template), []):
        for field in list(paths_in(seed))[1:]:
            for value in FIELD_GARBAGE:
                body = copy.deepcopy(seed)
                at(body, field[:-1])[field[-1]] = value
                problems.append(problem(cloud, logged_failures, method, template,
                                        (method, path, "", headers, json.dumps(body).encode(), content_type)))
    assert not [found for found in problems if found], "\n".join(found for found in problems if found)


PATH_GARBAGE = ["not-a-uuid", "9" * 40, "1" * 400, "-1", "1e400", "ünïcødé☃", "\x00", "..", "' OR '1'='1", "%"]
ID_ROUTES = [route for route in ROUTES if "{" in route[1]]


@pytest.mark.parametrize("method, template, choices, names", ID_ROUTES,
                         ids=[f"{m} {t}" for m, t, _, _ in ID_ROUTES])
def test_every_id_in_a_path_refuses_garbage_below_500(cloud, logged_failures, method, template, choices, names):
    """Each path parameter in turn malformed, the others valid, with the
    route's valid body (so the id is looked up, not the body refused first)."""
    choices = dict(choices)
    headers = {"X-Auth-Token": cloud.tokens["admin"], **PROBE_HEADERS}
    body = (cloud.seeds.get((method, template)) or [None])[0]
    content_type = "application/openstack-images-v2.1-json-patch" if method == "PATCH" and "/image/" in template \
        else "application/json"
    problems = []
    for name in re.findall(r"\{(\w+)\}", template):
        if name in choices:
            continue
        for value in PATH_GARBAGE:
            path = first_path(template.replace("{" + name + "}", quote(value, safe="")), choices, cloud)
            problems.append(problem(cloud, logged_failures, method, template, (
                method, path, "", headers, json.dumps(body).encode() if body is not None else None, content_type)))
    assert not [found for found in problems if found], "\n".join(found for found in problems if found)


# ------------------------------------------- what the fuzz found, pinned down

@pytest.mark.parametrize("method, path, body, field", [
    ("GET", "/image/v2/images?os_distro=%00", None, "'os_distro'"),
    ("GET", "/identity/v3/role_assignments?user.id=a%00b", None, "'user.id'"),
    ("GET", "/compute/v2.1/os-keypairs/%00", None, "URL path"),
    ("DELETE", "/image/v2/images/%00/members/x", None, "URL path"),
    ("POST", "/compute/v2.1/os-keypairs", {"keypair": {"name": "a\x00b"}}, "'keypair.name'"),
    ("POST", "/image/v2/images", {"name": "x", "tags": ["ok", "\x00"]}, "'tags[1]'"),
    ("POST", "/identity/v3/projects", {"project": {"name": "p", "tags": {"\x00": 1}}}, "'project.tags.\\x00'"),
])
def test_a_nul_character_anywhere_in_a_request_is_a_400_naming_where(cloud, method, path, body, field):
    """PostgreSQL cannot hold NUL in text: it used to be a 500 wherever the
    text reached a query."""
    response = send(cloud, (method, path.partition("?")[0], path.partition("?")[2],
                            {"X-Auth-Token": cloud.tokens["admin"]}, json.dumps(body).encode() if body else None,
                            "application/json"))
    assert response.status_code == 400, response.content
    service = path.split("/")[1]
    body = json.loads(response.content)
    assert_error_format(service, 400, body)
    assert field in error_message(service, body), body


@pytest.mark.parametrize("methods", [[{}], [["password"]], [None], ["password", 5]])
def test_token_methods_that_are_not_names_are_a_400(cloud, methods):
    """A list or an object among auth.identity.methods used to be a 500 (unhashable)."""
    body = {"auth": {"identity": {"methods": methods, "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": settings.ADMIN_PASSWORD}}}}}
    response = send(cloud, ("POST", "/identity/v3/auth/tokens", "", {}, json.dumps(body).encode(),
                            "application/json"))
    assert response.status_code == 400, response.content
    assert "'auth.identity.methods'" in error_message("identity", json.loads(response.content))


@pytest.mark.parametrize("user_id", [2**64, ["x"], {"id": "x"}, True])
def test_a_keypair_for_a_user_id_that_is_not_a_string_is_a_400(cloud, user_id):
    """An admin's keypair create with a user_id of the wrong type used to
    reach the database (a 500) or fail there."""
    body = {"keypair": {"name": f"fz-{uuid.uuid4().hex[:6]}", "user_id": user_id}}
    response = send(cloud, ("POST", "/compute/v2.1/os-keypairs", "",
                            {"X-Auth-Token": cloud.tokens["admin"], "OpenStack-API-Version": "compute 2.10"},
                            json.dumps(body).encode(), "application/json"))
    assert response.status_code == 400, response.content
    assert "'user_id'" in error_message("compute", json.loads(response.content))


@pytest.mark.parametrize("project_id", ["1" * 400, "no-such-project"])
def test_quotas_of_a_project_that_does_not_exist_are_a_400(cloud, project_id):
    """An id longer than any project's used to be a 500 from the database."""
    response = send(cloud, ("PUT", f"/compute/v2.1/os-quota-sets/{project_id}", "",
                            {"X-Auth-Token": cloud.tokens["admin"]},
                            json.dumps({"quota_set": {"instances": 5}}).encode(), "application/json"))
    assert response.status_code == 400, response.content
    assert f"Project ID {project_id} is not a valid project" in error_message("compute", json.loads(response.content))


@pytest.mark.parametrize("path, collection", [
    ("/network/v2.0/subnets?gateway_ip=abc", "subnets"),
    ("/network/v2.0/floatingips?fixed_ip_address=-1", "floatingips"),
    ("/network/v2.0/floatingips?floating_ip_address=not-an-address", "floatingips"),
])
def test_an_address_filter_that_is_no_address_matches_nothing(cloud, path, collection):
    """An address filter that is no address used to be a 500 when the query
    was sent; as in Neutron (whose address columns are strings) it matches
    nothing."""
    response = send(cloud, ("GET", path.partition("?")[0], path.partition("?")[2],
                            {"X-Auth-Token": cloud.tokens["admin"]}, None, "application/json"))
    assert response.status_code == 200, response.content
    assert json.loads(response.content) == {collection: []}


def network_call(cloud, method, path, body):
    response = send(cloud, (method, f"/network/v2.0/{path}", "", {"X-Auth-Token": cloud.tokens["admin"]},
                            json.dumps(body).encode(), "application/json"))
    return response.status_code, json.loads(response.content) if response.content else None


def test_an_update_that_gives_a_nested_object_without_what_it_requires_is_a_400(cloud):
    """PUT router with routes: [{}] used to pass validation (DRF's partial
    update skips nested required fields too) and fail with a 500."""
    router = cloud.ids["routers"][0]
    status, body = network_call(cloud, "PUT", f"routers/{router}", {"router": {"routes": [{}]}})
    assert status == 400, body
    assert "routes" in error_message("network", body), body
    status, body = network_call(cloud, "PUT", f"subnets/{cloud.ids['subnets'][0]}",
                                {"subnet": {"allocation_pools": [{"start": "10.99.0.10"}]}})
    assert status == 400 and "allocation_pools" in error_message("network", body), body
    status, body = network_call(cloud, "PUT", f"routers/{router}", {"router": {"name": "renamed"}})
    assert status == 200 and body["router"]["name"] == "renamed", body
    assert body["router"]["admin_state_up"] is True, "an update must not reset what it left out to defaults"


def test_a_security_group_rule_cannot_be_updated_405(cloud):
    """Neutron's rules are immutable; PUT used to be a 500 (no update)."""
    for method in ("PUT", "PATCH"):
        status, body = network_call(cloud, method, f"security-group-rules/{cloud.ids['security-group-rules'][0]}",
                                    {"security_group_rule": {"description": "d"}})
        assert status == 405, body
        assert_error_format("network", 405, body)


@pytest.mark.parametrize("project_id, quota, field", [
    ("demo", {"port": 2**64}, "port"),
    ("demo", {"network": 2**31}, "network"),
    ("1" * 400, {"network": 10}, "project_id"),
])
def test_network_quotas_the_table_cannot_hold_are_a_400(cloud, project_id, quota, field):
    """A limit past the column's integers or a project id longer than any
    used to be a 500 from the database."""
    project_id = cloud.ids["projects"][1] if project_id == "demo" else project_id
    status, body = network_call(cloud, "PUT", f"quotas/{project_id}", {"quota": quota})
    assert status == 400, body
    assert field in error_message("network", body), body
