"""Keystone's credentials on the wire: /v3/credentials (every type, ec2
blobs as Keystone's, a user's own or an admin's) and
/v3/users/{id}/credentials/OS-EC2, through the real CLI where it covers them."""
import hashlib
import json
import uuid

import pytest

pytestmark = pytest.mark.live


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def admin_token(cloud):
    return cloud.token("stratus")


@pytest.fixture(scope="module")
def member(cloud, admin_token):
    """A member of a new project: (user_id, project_id, token)."""
    import requests

    def call(method, path, **kwargs):
        return requests.request(method, cloud.url + path, headers={"X-Auth-Token": admin_token}, timeout=30, **kwargs)

    project_name, name, password = unique("proj"), unique("user"), uuid.uuid4().hex
    project = call("POST", "/identity/v3/projects", json={"project": {"name": project_name}}).json()["project"]
    user = call("POST", "/identity/v3/users", json={"user": {"name": name, "password": password}}).json()["user"]
    role_id = call("GET", "/identity/v3/roles?name=member").json()["roles"][0]["id"]
    call("PUT", f"/identity/v3/projects/{project['id']}/users/{user['id']}/roles/{role_id}")
    auth = {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": name, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"id": project["id"]}}}}
    token = requests.post(cloud.url + "/identity/v3/auth/tokens", json=auth, timeout=30).headers["X-Subject-Token"]
    return user["id"], project["id"], token


def test_cli_creates_lists_updates_and_deletes_credentials_of_every_type(cloud):
    project = cloud.openstack("project", "show", "admin", "-f", "json")
    user = cloud.openstack("user", "show", "admin", "-f", "json")
    blob = json.dumps({"access": uuid.uuid4().hex, "secret": uuid.uuid4().hex})
    ec2 = cloud.openstack("credential", "create", "--type", "ec2", "--project", project["id"], user["id"], blob,
                          "-f", "json")
    # Keystone's ec2 credential id is the SHA-256 of its access key.
    assert ec2["id"] == hashlib.sha256(json.loads(blob)["access"].encode()).hexdigest()
    assert ec2["type"] == "ec2" and ec2["project_id"] == project["id"] and ec2["user_id"] == user["id"]
    cert = cloud.openstack("credential", "create", "--type", "cert", user["id"], "-----BEGIN CERT-----", "-f", "json")
    assert cert["type"] == "cert" and cert["blob"] == "-----BEGIN CERT-----" and len(cert["id"]) == 32

    listed = cloud.openstack("credential", "list", "--type", "cert", "-f", "json")
    assert cert["id"] in [row["ID"] for row in listed] and ec2["id"] not in [row["ID"] for row in listed]
    cloud.openstack("credential", "set", "--type", "cert", "--data", "renewed", "--user", user["id"], cert["id"])
    assert cloud.openstack("credential", "show", cert["id"], "-f", "json")["blob"] == "renewed"

    cloud.openstack("credential", "delete", cert["id"], ec2["id"])
    assert cloud.openstack("credential", "show", cert["id"], expect_fail=True).returncode != 0
    assert ec2["id"] not in [row["ID"] for row in cloud.openstack("credential", "list", "-f", "json")]


def test_ec2_credential_is_validated_as_keystone_validates_it(api, admin_token, member):
    user_id, project_id, _ = member
    cases = [
        ({"type": "ec2", "user_id": user_id, "blob": json.dumps({"access": "a"})}, "project_id"),
        ({"type": "ec2", "user_id": user_id, "project_id": project_id, "blob": "not json"}, "blob"),
        ({"type": "ec2", "user_id": user_id, "project_id": project_id, "blob": json.dumps({"secret": "s"})}, "blob"),
        ({"type": "cert", "user_id": user_id}, "blob"),
        ({"type": "x" * 256, "user_id": user_id, "blob": "b"}, "type"),
    ]
    for body, field in cases:
        response = api.post("/identity/v3/credentials", token=admin_token, json={"credential": body})
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["code"] == 400
        assert field in response.json()["error"]["message"] or "blob" in response.json()["error"]["message"]
    missing = api.post("/identity/v3/credentials", token=admin_token, json={"credential": {
        "type": "cert", "user_id": "no-such-user", "blob": "b"}})
    assert missing.status_code == 404 and "no-such-user" in missing.json()["error"]["message"]
    assert api.get("/identity/v3/credentials", token=admin_token).json()["credentials"] is not None

    blob = json.dumps({"access": uuid.uuid4().hex, "secret": "s"})
    body = {"credential": {"type": "ec2", "user_id": user_id, "project_id": project_id, "blob": blob}}
    assert api.post("/identity/v3/credentials", token=admin_token, json=body).status_code == 201
    again = api.post("/identity/v3/credentials", token=admin_token, json=body)
    assert again.status_code == 409 and again.json()["error"]["title"] == "Conflict"


def test_credentials_are_their_owners_or_an_admins(api, admin_token, member):
    user_id, project_id, token = member
    own = api.post("/identity/v3/credentials", token=token, json={"credential": {
        "type": "totp", "user_id": user_id, "blob": "seed"}})
    assert own.status_code == 201
    credential_id = own.json()["credential"]["id"]
    admin_user = api.get("/identity/v3/users?name=admin", token=admin_token).json()["users"][0]["id"]
    admins = api.post("/identity/v3/credentials", token=admin_token, json={"credential": {
        "type": "totp", "user_id": admin_user, "blob": "admin seed"}}).json()["credential"]

    # Not for another user, nobody else's in a list, another's reads as 404.
    forged = api.post("/identity/v3/credentials", token=token, json={"credential": {
        "type": "totp", "user_id": admin_user, "blob": "x"}})
    assert forged.status_code == 403
    listed = api.get("/identity/v3/credentials", token=token).json()["credentials"]
    assert credential_id in [row["id"] for row in listed] and {row["user_id"] for row in listed} == {user_id}
    assert api.get(f"/identity/v3/credentials/{admins['id']}", token=token).status_code == 404
    assert api.delete(f"/identity/v3/credentials/{admins['id']}", token=token).status_code == 404
    # The owner cannot hand a credential to someone else; an admin sees and deletes anyone's.
    moved = api.patch(f"/identity/v3/credentials/{credential_id}", token=token,
                      json={"credential": {"user_id": admin_user}})
    assert moved.status_code == 403
    assert api.get(f"/identity/v3/credentials/{credential_id}", token=admin_token).json()["credential"]["user_id"] \
        == user_id
    assert api.delete(f"/identity/v3/credentials/{admins['id']}", token=admin_token).status_code == 204


def test_ec2_credential_bindings_cannot_be_updated(api, admin_token, member):
    user_id, project_id, _ = member
    blob = {"access": uuid.uuid4().hex, "secret": "s", "trust_id": None}
    created = api.post("/identity/v3/credentials", token=admin_token, json={"credential": {
        "type": "ec2", "user_id": user_id, "project_id": project_id, "blob": json.dumps(blob)}}).json()["credential"]
    rebound = api.patch(f"/identity/v3/credentials/{created['id']}", token=admin_token,
                        json={"credential": {"blob": json.dumps({**blob, "trust_id": "t"})}})
    assert rebound.status_code == 400 and "trust_id" in rebound.json()["error"]["message"]
    no_project = api.patch(f"/identity/v3/credentials/{created['id']}", token=admin_token,
                           json={"credential": {"project_id": None}})
    assert no_project.status_code == 400 and "project_id" in no_project.json()["error"]["message"]
    assert api.get(f"/identity/v3/credentials/{created['id']}", token=admin_token).json()["credential"] == created


def test_cli_ec2_credentials_of_a_user(cloud):
    project = cloud.openstack("project", "show", "admin", "-f", "json")
    created = cloud.openstack("ec2", "credentials", "create", "--project", "admin", "-f", "json")
    assert created["project_id"] == project["id"] and created["access"] and created["secret"]
    shown = cloud.openstack("ec2", "credentials", "show", created["access"], "-f", "json")
    assert shown["secret"] == created["secret"]
    assert created["access"] in [row["Access"] for row in cloud.openstack("ec2", "credentials", "list", "-f", "json")]
    # The same keys are an ec2 credential of /v3/credentials.
    as_credential = cloud.openstack("credential", "show", hashlib.sha256(created["access"].encode()).hexdigest(),
                                    "-f", "json")
    assert as_credential["type"] == "ec2" and json.loads(as_credential["blob"])["secret"] == created["secret"]
    cloud.openstack("ec2", "credentials", "delete", created["access"])
    assert cloud.openstack("ec2", "credentials", "show", created["access"], expect_fail=True).returncode != 0


def test_ec2_credentials_of_another_user_are_refused(api, admin_token, member):
    user_id, project_id, token = member
    admin_user = api.get("/identity/v3/users?name=admin", token=admin_token).json()["users"][0]["id"]
    mine = api.post(f"/identity/v3/users/{user_id}/credentials/OS-EC2", token=token, json={"tenant_id": project_id})
    assert mine.status_code == 201 and mine.json()["credential"]["tenant_id"] == project_id
    access = mine.json()["credential"]["access"]
    assert api.get(f"/identity/v3/users/{admin_user}/credentials/OS-EC2", token=token).status_code == 403
    assert api.post(f"/identity/v3/users/{admin_user}/credentials/OS-EC2", token=token,
                    json={"tenant_id": project_id}).status_code == 403
    missing = api.post(f"/identity/v3/users/{user_id}/credentials/OS-EC2", token=token, json={"tenant_id": "nope"})
    assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]
    no_tenant = api.post(f"/identity/v3/users/{user_id}/credentials/OS-EC2", token=token, json={})
    assert no_tenant.status_code == 400 and "tenant_id" in no_tenant.json()["error"]["message"]
    assert api.delete(f"/identity/v3/users/{user_id}/credentials/OS-EC2/{access}", token=token).status_code == 204
    gone = api.get(f"/identity/v3/users/{user_id}/credentials/OS-EC2/{access}", token=token)
    assert gone.status_code == 404 and gone.json()["error"]["title"] == "Not Found"
