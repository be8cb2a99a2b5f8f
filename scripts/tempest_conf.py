"""Writes a tempest.conf for a running Stratus cloud (`make start` first).

    tempest_conf.py OUTPUT

Reads the cloud's address and admin password from the environment the
all-in-one reads them from (STRATUS_PUBLIC_URL or STRATUS_API_PORT,
STRATUS_ADMIN_PASSWORD) and asks the cloud itself for the rest: the image
and flavors the tests boot, the external network, the compute microversion
range, the compute nodes up and the network extensions. Feature flags say what Stratus has
built; a flag is off only where the feature is truly absent, and
docs/conformance.md says so for each."""
import configparser
import os
import sys

import requests

PUBLIC_URL = os.environ.get(
    "STRATUS_PUBLIC_URL", f"http://127.0.0.1:{os.environ.get('STRATUS_API_PORT', '8000')}").rstrip("/")
ADMIN_PASSWORD = os.environ.get("STRATUS_ADMIN_PASSWORD", "stratus-admin")
IMAGE_NAME = "stratus-tiny"
FLAVOR_NAME, FLAVOR_ALT_NAME = "m1.nano", "m1.tiny"

# Services Stratus serves today (service_available); the others are off
# until they land.
SERVICES = {"keystone": True, "nova": True, "glance": True, "neutron": True,
            "cinder": True, "swift": True, "horizon": False}

# What is not built yet: these features are absent, so Tempest skips them.
IDENTITY_FEATURES = {"trust": True, "security_compliance": True, "domain_specific_drivers": False,
                     "access_rules": True}
# The cloud's password rules (the settings it reads from the same
# environment), which Tempest's security compliance tests must know.
PASSWORD_RULES = {"user_lockout_failure_attempts": "STRATUS_LOCKOUT_FAILURE_ATTEMPTS",
                  "user_lockout_duration": "STRATUS_LOCKOUT_DURATION",
                  "user_unique_last_password_count": "STRATUS_UNIQUE_LAST_PASSWORD_COUNT",
                  "user_minimum_password_age": "STRATUS_MINIMUM_PASSWORD_AGE"}
PASSWORD_RULE_DEFAULTS = {"STRATUS_LOCKOUT_DURATION": "1800"}
COMPUTE_FEATURES = {
    "resize": True, "pause": True, "suspend": True, "console_output": True, "vnc_console": True,
    "enable_instance_password": True, "disk_config": True, "metadata_service": True,
    "shelve": True, "rescue": True, "snapshot": True, "cold_migration": True,
    "live_migration": False, "interface_attach": True, "config_drive": True, "change_password": True,
    "personality": False, "attach_encrypted_volume": False, "serial_console": False, "spice_console": False,
}
IMAGE_FEATURES = {"import_image": True, "manage_locations": False}
# Swift's container sync and object versioning are not built.
OBJECT_STORAGE_FEATURES = {"container_sync": False, "object_versioning": False, "discoverability": True}
# Volumes have snapshots and clones; no backup service, no manage/unmanage,
# no replication.
VOLUME_FEATURES = {"snapshot": True, "clone": True, "backup": True, "manage_snapshot": False,
                   "manage_volume": False, "replication": False, "multi_backend": False}


def admin_token():
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PASSWORD}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    response = requests.post(f"{PUBLIC_URL}/identity/v3/auth/tokens", json=body, timeout=30)
    response.raise_for_status()
    return response.headers["X-Subject-Token"]


def get(path, token, **headers):
    response = requests.get(f"{PUBLIC_URL}{path}", headers={"X-Auth-Token": token, **headers}, timeout=30)
    response.raise_for_status()
    return response.json()


def one(items, what):
    if not items:
        sys.exit(f"tempest_conf: the cloud has no {what} (bootstrap and `make start` make it)")
    return items[0]["id"]


def main(output):
    token = admin_token()
    image_id = one(get(f"/image/v2/images?name={IMAGE_NAME}", token)["images"], f"image {IMAGE_NAME}")
    flavors = {flavor["name"]: flavor["id"] for flavor in get("/compute/v2.1/flavors", token)["flavors"]}
    for name in (FLAVOR_NAME, FLAVOR_ALT_NAME):
        if name not in flavors:
            sys.exit(f"tempest_conf: the cloud has no flavor {name}")
    compute_version = get("/compute/v2.1/", token)["version"]
    # Moves between hosts (cold migration) need two compute nodes taking work.
    compute_nodes = sum(1 for service in get("/compute/v2.1/os-services", token)["services"]
                        if service["binary"] in ("nova-compute", "stratus-compute") and service["state"] == "up"
                        and service["status"] == "enabled")
    volume_version = get("/volume/v3", token)["versions"][0]
    object_apis = sorted(get("/object-store/info", token))
    external = get("/network/v2.0/networks?router:external=true", token)["networks"]
    extensions = sorted(extension["alias"] for extension in get("/network/v2.0/extensions", token)["extensions"])

    conf = configparser.ConfigParser(interpolation=None)
    conf["DEFAULT"] = {"log_file": "tempest.log", "debug": "true"}
    conf["auth"] = {
        "use_dynamic_credentials": "true", "create_isolated_networks": "true",
        "admin_username": "admin", "admin_password": ADMIN_PASSWORD, "admin_project_name": "admin",
        "admin_domain_name": "Default", "default_credentials_domain_name": "Default",
    }
    conf["identity"] = {
        "uri_v3": f"{PUBLIC_URL}/identity/v3", "auth_version": "v3", "region": "RegionOne",
        "v3_endpoint_type": "public", "admin_domain_scope": "false",
        **{option: os.environ.get(variable, PASSWORD_RULE_DEFAULTS.get(variable, "0"))
           for option, variable in PASSWORD_RULES.items()},
    }
    conf["identity-feature-enabled"] = {name: str(value).lower() for name, value in IDENTITY_FEATURES.items()}
    conf["compute"] = {
        "image_ref": image_id, "image_ref_alt": image_id,
        "flavor_ref": flavors[FLAVOR_NAME], "flavor_ref_alt": flavors[FLAVOR_ALT_NAME],
        "min_microversion": compute_version["min_version"], "max_microversion": compute_version["version"],
        "build_timeout": "300", "region": "RegionOne", "endpoint_type": "publicURL",
        "min_compute_nodes": str(compute_nodes),
    }
    conf["compute-feature-enabled"] = {name: str(value).lower() for name, value in COMPUTE_FEATURES.items()}
    conf["image"] = {"region": "RegionOne", "endpoint_type": "publicURL"}
    if os.environ.get("STRATUS_TEMPEST_HTTP_QCOW2_IMAGE"):
        # A qcow2 at a URL the cloud's web-download allow-list takes (a
        # local mirror: Tempest's default is on the internet).
        conf["image"]["http_qcow2_image"] = os.environ["STRATUS_TEMPEST_HTTP_QCOW2_IMAGE"]
    conf["image-feature-enabled"] = {name: str(value).lower() for name, value in IMAGE_FEATURES.items()}
    conf["network"] = {"region": "RegionOne", "endpoint_type": "publicURL", "project_network_cidr": "10.100.0.0/16",
                       "project_network_mask_bits": "28"}
    if external:
        conf["network"]["public_network_id"] = external[0]["id"]
        conf["network"]["floating_network_name"] = external[0]["name"]
    conf["network-feature-enabled"] = {"api_extensions": ",".join(extensions) or "None", "ipv6": "true",
                                       # Subnets take ipv6_ra_mode / ipv6_address_mode (SLAAC, DHCPv6).
                                       "ipv6_subnet_attributes": "true",
                                       # Floating IPs need an external network to come from.
                                       "floating_ips": str(bool(external)).lower()}
    conf["volume"] = {"region": "RegionOne", "endpoint_type": "publicURL", "catalog_type": "volumev3",
                      "min_microversion": volume_version["min_version"],
                      "max_microversion": volume_version["version"],
                      # What the pools report as their vendor (Tempest's default is LVM's "Open Source").
                      "vendor_name": "Stratus"}
    conf["volume-feature-enabled"] = {name: str(value).lower() for name, value in VOLUME_FEATURES.items()}
    conf["object-storage"] = {"region": "RegionOne", "endpoint_type": "publicURL", "operator_role": "member"}
    conf["object-storage-feature-enabled"] = {name: str(value).lower() for name, value in
                                              OBJECT_STORAGE_FEATURES.items()}
    conf["object-storage-feature-enabled"]["discoverable_apis"] = ",".join(object_apis)
    conf["validation"] = {"run_validation": "false"}
    conf["service_available"] = {name: str(value).lower() for name, value in SERVICES.items()}
    with open(output, "w") as out:
        conf.write(out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
