"""Keypairs as Nova keeps them past the basics: x509 keypairs hold a
certificate (made for the user, or imported; an SSH key is no certificate),
and from 2.35 a user's keypairs come in pages by name."""
import subprocess
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

pytestmark = pytest.mark.live

V235 = {"OpenStack-API-Version": "compute 2.35"}


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def demo_token(cloud):
    return cloud.token("stratus-demo")


def test_an_x509_keypair_is_a_certificate_made_or_imported(cloud, api, demo_token, tmp_path):
    made = api.post("/compute/v2.1/os-keypairs", token=demo_token, headers=V235,
                    json={"keypair": {"name": unique("cert"), "type": "x509"}})
    assert made.status_code == 201, made.text
    body = made.json()["keypair"]
    certificate = x509.load_pem_x509_certificate(body["public_key"].encode())
    assert body["type"] == "x509" and "PRIVATE KEY" in body["private_key"]
    assert body["fingerprint"] == ":".join(f"{byte:02x}" for byte in certificate.fingerprint(hashes.SHA1()))

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "30", "-subj", "/CN=imported"], check=True, capture_output=True)
    name = unique("imported-cert")
    # openstacksdk, as the CLI's --type is lost on the way to it (it passes key_type, the SDK reads type).
    imported = cloud.connect("stratus-demo").compute.create_keypair(name=name, type="x509",
                                                                     public_key=cert.read_text())
    expected = x509.load_pem_x509_certificate(cert.read_bytes()).fingerprint(hashes.SHA1())
    assert imported.fingerprint == ":".join(f"{byte:02x}" for byte in expected)
    assert imported.type == "x509"

    ssh_key = tmp_path / "id.pub"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")], check=True)
    refused = api.post("/compute/v2.1/os-keypairs", token=demo_token, headers=V235, json={"keypair": {
        "name": unique("not-a-cert"), "type": "x509", "public_key": ssh_key.read_text()}})
    assert refused.status_code == 400 and "x509 certificate" in refused.text
    as_ssh = api.post("/compute/v2.1/os-keypairs", token=demo_token, headers=V235, json={"keypair": {
        "name": unique("cert-as-ssh"), "type": "ssh", "public_key": cert.read_text()}})
    assert as_ssh.status_code == 400 and "OpenSSH" in as_ssh.text
    for keypair in (body["name"], name):
        assert api.delete(f"/compute/v2.1/os-keypairs/{keypair}", token=demo_token, headers=V235).status_code == 204


def test_keypairs_page_by_name_from_2_35(api, cloud, demo_token, tmp_path):
    user = cloud.openstack("user", "create", "--password", "pw-" + uuid.uuid4().hex, unique("pager"),
                           "-f", "json")
    admin = cloud.token("stratus")
    names = sorted(unique(f"page{index}") for index in range(5))
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")], check=True)
    public_key = (tmp_path / "id.pub").read_text()
    for name in names:
        # An admin makes them for the new user (2.10+), so the user has these five only.
        assert api.post("/compute/v2.1/os-keypairs", token=admin, headers=V235, json={"keypair": {
            "name": name, "public_key": public_key, "user_id": user["id"]}}).status_code == 201

    base = f"/compute/v2.1/os-keypairs?user_id={user['id']}"
    first = api.get(f"{base}&limit=2", token=admin, headers=V235).json()
    assert [entry["keypair"]["name"] for entry in first["keypairs"]] == names[:2]
    next_url = first["keypairs_links"][0]["href"]
    assert f"marker={names[1]}" in next_url
    second = api.get(f"{base}&limit=2&marker={names[1]}", token=admin, headers=V235).json()
    assert [entry["keypair"]["name"] for entry in second["keypairs"]] == names[2:4]
    last = api.get(f"{base}&limit=2&marker={names[3]}", token=admin, headers=V235).json()
    assert [entry["keypair"]["name"] for entry in last["keypairs"]] == names[4:] and "keypairs_links" not in last

    unknown = api.get(f"{base}&marker=no-such-key", token=admin, headers=V235)
    assert unknown.status_code == 400 and "no-such-key" in unknown.text
    # Another user's keypair name is no marker in this user's list.
    other = api.get(f"/compute/v2.1/os-keypairs?marker={names[0]}", token=demo_token, headers=V235)
    assert other.status_code == 400
    # Before 2.35 limit and marker are ignored: every keypair, as Nova.
    old = api.get(f"{base}&limit=2", token=admin, headers={"OpenStack-API-Version": "compute 2.34"}).json()
    assert [entry["keypair"]["name"] for entry in old["keypairs"]] == names
    bad_limit = api.get(f"{base}&limit=-1", token=admin, headers=V235)
    assert bad_limit.status_code == 400 and "limit" in bad_limit.text
    cloud.openstack("user", "delete", user["id"])
