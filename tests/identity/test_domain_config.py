"""Domain configuration (/v3/domains/{id}/config), as Keystone keeps it:
only the `identity` and `ldap` groups and their allowed options, sensitive
ones stored but never shown, and Keystone's defaults. The `openstack` CLI
has no domain configuration commands: raw HTTP."""
import pytest

from tests.identity.test_api import admin_token, issue, make_user, password_auth, unique  # noqa: F401  (fixtures)

pytestmark = pytest.mark.live

LDAP = {"identity": {"driver": "ldap"},
        "ldap": {"url": "ldap://ldap.example:389/", "user_tree_dn": "ou=Users,dc=example,dc=org"}}


@pytest.fixture
def domain(api, admin_token):
    made = api.post("/identity/v3/domains", token=admin_token, json={"domain": {"name": unique("dom")}}).json()
    domain_id = made["domain"]["id"]
    yield f"/identity/v3/domains/{domain_id}/config"
    api.patch(f"/identity/v3/domains/{domain_id}", token=admin_token, json={"domain": {"enabled": False}})
    api.delete(f"/identity/v3/domains/{domain_id}", token=admin_token)


def test_a_config_is_created_shown_by_group_and_option_replaced_and_deleted(api, admin_token, domain):
    assert api.get(domain, token=admin_token).status_code == 404
    created = api.put(domain, token=admin_token, json={"config": LDAP})
    assert created.status_code == 201 and created.json() == {"config": LDAP}
    assert api.get(domain, token=admin_token).json() == {"config": LDAP}
    assert api.get(f"{domain}/ldap", token=admin_token).json() == {"config": {"ldap": LDAP["ldap"]}}
    assert api.get(f"{domain}/ldap/url", token=admin_token).json() == {"config": {"url": LDAP["ldap"]["url"]}}
    assert api.get(f"{domain}/ldap/user_filter", token=admin_token).status_code == 404  # allowed, not set
    # A second PUT replaces the whole configuration (200: it existed).
    again = api.put(domain, token=admin_token, json={"config": {"identity": {"driver": "sql"}}})
    assert again.status_code == 200 and again.json() == {"config": {"identity": {"driver": "sql"}}}
    assert api.get(f"{domain}/ldap", token=admin_token).status_code == 404
    assert api.delete(domain, token=admin_token).status_code == 204
    assert api.get(domain, token=admin_token).status_code == 404


def test_patches_merge_and_group_and_option_paths_touch_only_themselves(api, admin_token, domain):
    api.put(domain, token=admin_token, json={"config": LDAP})
    merged = api.patch(domain, token=admin_token, json={"config": {"ldap": {"url": "ldap://other/"}}})
    assert merged.status_code == 200
    assert merged.json()["config"]["ldap"] == {**LDAP["ldap"], "url": "ldap://other/"}
    group = api.patch(f"{domain}/identity", token=admin_token,
                      json={"config": {"identity": {"driver": "custom", "list_limit": 42}}})
    assert group.status_code == 200
    assert group.json()["config"]["identity"] == {"driver": "custom", "list_limit": 42}
    option = api.patch(f"{domain}/identity/driver", token=admin_token, json={"config": {"driver": "sql"}})
    assert option.json()["config"]["identity"]["driver"] == "sql"
    # The path's group (option) and only it; one that is not set is a 404.
    assert api.patch(f"{domain}/identity", token=admin_token,
                     json={"config": {"ldap": {"url": "x"}}}).status_code == 403
    assert api.patch(f"{domain}/identity/driver", token=admin_token,
                     json={"config": {"list_limit": 3}}).status_code == 403
    assert api.patch(f"{domain}/ldap/user_filter", token=admin_token,
                     json={"config": {"user_filter": "(x=1)"}}).status_code == 404
    assert api.delete(f"{domain}/identity/driver", token=admin_token).status_code == 204
    assert api.get(f"{domain}/identity/driver", token=admin_token).status_code == 404
    assert api.get(f"{domain}/identity", token=admin_token).json() == {"config": {"identity": {"list_limit": 42}}}
    assert api.delete(f"{domain}/identity", token=admin_token).status_code == 204
    assert api.get(f"{domain}/identity", token=admin_token).status_code == 404
    assert api.delete(f"{domain}/identity", token=admin_token).status_code == 404
    assert set(api.get(domain, token=admin_token).json()["config"]) == {"ldap"}


def test_the_ldap_password_is_kept_but_never_shown(api, admin_token, domain):
    config = {"ldap": {"url": "ldap://ldap.example/", "password": "bind-secret"}}
    created = api.put(domain, token=admin_token, json={"config": config})
    assert created.status_code == 201
    assert created.json() == {"config": {"ldap": {"url": "ldap://ldap.example/"}}}
    assert "bind-secret" not in api.get(domain, token=admin_token).text
    assert api.get(f"{domain}/ldap/password", token=admin_token).status_code == 404
    # It is there all the same: a patch of it by its path is allowed, a delete finds it.
    assert api.patch(f"{domain}/ldap/password", token=admin_token,
                     json={"config": {"password": "rotated"}}).status_code == 200
    assert api.delete(f"{domain}/ldap/password", token=admin_token).status_code == 204
    assert api.delete(f"{domain}/ldap/password", token=admin_token).status_code == 404


@pytest.mark.parametrize("config, status, words", [
    ({"assignment": {"driver": "sql"}}, 403, "group assignment"),
    ({"identity": {"password_hash_rounds": 4}}, 403, "option password_hash_rounds"),
    ({"ldap": {"url": "x", "bogus": 1}}, 403, "option bogus"),
    ({}, 400, "'config'"),
    ({"ldap": {}}, 400, "'config.ldap'"),
    ({"ldap": "ldap://x"}, 400, "'config.ldap'"),
    ("identity", 400, "'config'"),
])
def test_groups_and_options_keystone_does_not_allow_are_refused(api, admin_token, domain, config, status, words):
    response = api.put(domain, token=admin_token, json={"config": config})
    assert response.status_code == status, response.text
    assert words in response.json()["error"]["message"]
    assert api.get(domain, token=admin_token).status_code == 404  # nothing stored
    assert api.put(domain, token=admin_token, json={"configuration": LDAP}).status_code == 400


def test_defaults_are_keystones_groups_and_options(api, admin_token):
    config = api.get("/identity/v3/domains/config/default", token=admin_token).json()["config"]
    assert set(config) == {"identity", "ldap"}
    assert config["identity"] == {"driver": "sql", "list_limit": None}
    assert "password" not in config["ldap"] and config["ldap"]["user_tree_dn"] is None
    assert api.get("/identity/v3/domains/config/ldap/default", token=admin_token).json() == {
        "config": {"ldap": config["ldap"]}}
    assert api.get("/identity/v3/domains/config/ldap/url/default", token=admin_token).json() == {
        "config": {"url": "ldap://localhost"}}
    assert api.get("/identity/v3/domains/config/ldap/password/default", token=admin_token).status_code == 403
    assert api.get("/identity/v3/domains/config/resource/default", token=admin_token).status_code == 403


def test_domain_config_is_for_cloud_admins_and_a_missing_domain_is_a_404(api, admin_token, make_user, domain):
    _, name, password, _, project_name = make_user("admin")  # admin of their own project only
    token = issue(api, password_auth(name, password, project_name)).headers["X-Subject-Token"]
    assert api.put(domain, token=token, json={"config": LDAP}).status_code == 403
    assert api.get("/identity/v3/domains/config/default", token=token).status_code == 403
    assert api.get(domain, token=admin_token).status_code == 404
    assert api.put("/identity/v3/domains/missing/config", token=admin_token, json={"config": LDAP}).status_code == 404
    assert api.get("/identity/v3/domains/missing/config/ldap", token=admin_token).status_code == 404
