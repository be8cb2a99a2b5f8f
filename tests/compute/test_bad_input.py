"""Input that used to reach the database or a parser unchecked and answer
500: each is a 400 in Nova's format naming the field, and nothing is
written."""
import base64
import uuid

import pytest

pytestmark = pytest.mark.live

V = {"OpenStack-API-Version": "compute 2.60"}


@pytest.fixture(scope="module")
def tokens(cloud):
    return {"admin": cloud.token("stratus"), "demo": cloud.token("stratus-demo")}


def bad_request_message(response):
    assert response.status_code == 400, response.text
    return response.json()["badRequest"]["message"]


@pytest.mark.parametrize("path", ["/compute/v2.1/servers", "/compute/v2.1/servers/detail",
                                  "/compute/v2.1/os-migrations"])
def test_changes_since_that_is_no_real_time_is_400(api, tokens, path):
    response = api.get(f"{path}?changes-since=2020-13-01T00:00:00", token=tokens["admin"], headers=V)
    assert "'changes-since'" in bad_request_message(response)


def test_name_regex_valid_in_python_but_not_in_postgresql_is_400(api, tokens):
    # A Python named group: PostgreSQL's regular expressions refuse it.
    response = api.get("/compute/v2.1/servers?name=(?P<n>web)", token=tokens["demo"], headers=V)
    assert "'name'" in bad_request_message(response)
    # A pattern both accept still filters.
    assert api.get("/compute/v2.1/servers?name=^(web|db)-[0-9]+$", token=tokens["demo"],
                   headers=V).status_code == 200


def test_keypair_of_an_unknown_key_type_is_400_and_not_created(api, tokens):
    name = f"odd-{uuid.uuid4().hex[:6]}"
    blob = base64.b64encode(b"\x00\x00\x00\x0bssh-unknown\x00\x00\x00\x01\x01").decode()
    response = api.post("/compute/v2.1/os-keypairs", token=tokens["demo"], headers=V,
                        json={"keypair": {"name": name, "public_key": f"ssh-unknown {blob} me@host"}})
    assert "'public_key'" in bad_request_message(response)
    assert api.get(f"/compute/v2.1/os-keypairs/{name}", token=tokens["demo"], headers=V).status_code == 404


@pytest.mark.parametrize("field, value", [("rxtx_factor", "fast"), ("rxtx_factor", {"x": 1}),
                                          ("rxtx_factor", 0), ("description", 42),
                                          ("description", {"text": "no"}), ("description", ["a"])])
def test_flavor_with_a_bad_field_is_400_and_not_created(api, tokens, field, value):
    name = f"bad-{uuid.uuid4().hex[:6]}"
    response = api.post("/compute/v2.1/flavors", token=tokens["admin"], headers=V,
                        json={"flavor": {"name": name, "ram": 64, "vcpus": 1, "disk": 1, field: value}})
    assert f"'{field}'" in bad_request_message(response)
    names = {flavor["name"] for flavor in api.get("/compute/v2.1/flavors?is_public=none", token=tokens["admin"],
                                                  headers=V).json()["flavors"]}
    assert name not in names


def test_flavor_description_update_must_be_a_string(api, tokens):
    name = f"desc-{uuid.uuid4().hex[:6]}"
    created = api.post("/compute/v2.1/flavors", token=tokens["admin"], headers=V, json={
        "flavor": {"name": name, "ram": 64, "vcpus": 1, "disk": 1, "rxtx_factor": "1.5",
                   "description": "  small  "}})
    assert created.status_code == 200, created.text
    flavor = created.json()["flavor"]
    assert flavor["rxtx_factor"] == 1.5 and flavor["description"] == "  small  "
    path = f"/compute/v2.1/flavors/{flavor['id']}"
    try:
        response = api.put(path, token=tokens["admin"], headers=V, json={"flavor": {"description": {"a": 1}}})
        assert "'description'" in bad_request_message(response)
        assert api.get(path, token=tokens["admin"], headers=V).json()["flavor"]["description"] == "  small  "
        cleared = api.put(path, token=tokens["admin"], headers=V, json={"flavor": {"description": None}})
        assert cleared.status_code == 200 and cleared.json()["flavor"]["description"] is None
    finally:
        api.delete(path, token=tokens["admin"], headers=V)
