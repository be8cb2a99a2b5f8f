"""Glance's metadata definitions (/image/v2/metadefs/...): namespaces and
their objects, properties, tags and resource type associations, through
openstacksdk's metadef proxies where it has them and raw HTTP elsewhere;
who sees and writes what; bad input; the cost of listing."""
import pytest
from openstack import exceptions as sdk_exceptions

from tests.images.conftest import unique

pytestmark = pytest.mark.live

NAMESPACES = "/image/v2/metadefs/namespaces"


@pytest.fixture
def admin(cloud):
    return cloud.connect("stratus")


@pytest.fixture
def token(cloud):
    return cloud.token()


@pytest.fixture
def demo_token(cloud):
    return cloud.token("stratus-demo")


def make_project_admin(cloud):
    """A user holding `admin` on an ordinary project of its own (Glance's
    metadef_admin, but not the cloud's administrator): its token there, the
    ids, and a function removing everything again."""
    import openstack

    admin = cloud.connect("stratus")
    project = admin.identity.create_project(name=unique("md-proj"), domain_id="default")
    password = unique("pw")
    user = admin.identity.create_user(name=unique("md-admin"), password=password, domain_id="default")
    admin.identity.assign_project_role_to_user(project, user, admin.identity.find_role("admin"))
    connection = openstack.connect(auth_url=f"{cloud.url}/identity/v3", username=user.name, password=password,
                                   user_domain_id="default", project_id=project.id)

    def remove():
        admin.identity.delete_user(user)
        admin.identity.delete_project(project)
    return {"token": connection.auth_token, "project": project.id, "user": user.id, "connection": admin,
            "remove": remove}


@pytest.fixture(scope="module")
def project_admin(cloud):
    made = make_project_admin(cloud)
    yield made
    made["remove"]()


@pytest.fixture
def namespaces(api, token):
    """Makes namespaces over raw HTTP (as the admin) and removes them
    afterwards, protected or not."""
    made = []

    def create(**body):
        body.setdefault("namespace", unique("ns"))
        response = api.post(NAMESPACES, token=token, json=body)
        assert response.status_code == 201, response.text
        made.append(body["namespace"])
        return response.json()

    yield create
    for name in made:
        api.put(f"{NAMESPACES}/{name}", token=token, json={"namespace": name, "protected": False})
        api.delete(f"{NAMESPACES}/{name}", token=token)


def listed(api, token, query=""):
    """Every namespace name the caller lists, following `next`."""
    names, url = [], f"{NAMESPACES}{query}"
    while url:
        response = api.get(url, token=token)
        assert response.status_code == 200, response.text
        page = response.json()
        names += [item["namespace"] for item in page["namespaces"]]
        url = "/image" + page["next"] if "next" in page else None
    return names


def test_namespace_lifecycle_with_the_sdk(admin, api, token):
    name = unique("sdk-ns")
    created = admin.image.create_metadef_namespace(
        namespace=name, display_name="Hardware", description="CPU and memory", visibility="public",
        protected=True, resource_type_associations=[{"name": "OS::Glance::Image", "prefix": "hw_"}])
    try:
        admin.image.create_metadef_property(name, name="cpu_cores", title="Cores", type="integer", minimum=1,
                                            maximum=64)
        admin.image.create_metadef_object(name, name="cpu", properties={
            "policy": {"title": "Policy", "type": "string", "enum": ["shared", "dedicated"]}})
        admin.image.add_tag_to_metadef_namespace(name, "hardware")
        assert created.namespace == name and created.visibility == "public" and created.is_protected
        assert name in [item.namespace for item in admin.image.metadef_namespaces()]
        shown = admin.image.get_metadef_namespace(name)
        assert shown.display_name == "Hardware" and shown.description == "CPU and memory"
        assert [(item["name"], item["prefix"]) for item in shown.resource_type_associations] == [
            ("OS::Glance::Image", "hw_")]
        # The contents (which the SDK's namespace does not carry) come with it.
        body = api.get(f"{NAMESPACES}/{name}", token=token).json()
        assert body["properties"] == {"cpu_cores": {"title": "Cores", "type": "integer", "minimum": 1,
                                                    "maximum": 64}}
        assert [item["name"] for item in body["objects"]] == ["cpu"]
        assert body["tags"] == [{"name": "hardware"}]
        # As seen on an image: the names carry the association's prefix.
        on_image = api.get(f"{NAMESPACES}/{name}?resource_type=OS::Glance::Image", token=token).json()
        assert list(on_image["properties"]) == ["hw_cpu_cores"]
        assert list(on_image["objects"][0]["properties"]) == ["hw_policy"]
        assert api.get(f"{NAMESPACES}/{name}/properties/hw_cpu_cores?resource_type=OS::Glance::Image",
                       token=token).json()["title"] == "Cores"

        with pytest.raises(sdk_exceptions.ForbiddenException):
            admin.image.delete_metadef_namespace(name)
        for path in ("/objects/cpu", "/properties/cpu_cores", "/tags/hardware", "/tags",
                     "/resource_types/OS::Glance::Image"):
            assert api.delete(f"{NAMESPACES}/{name}{path}", token=token).status_code == 403, path
        assert api.get(f"{NAMESPACES}/{name}", token=token).json() == body

        updated = admin.image.update_metadef_namespace(name, visibility="private", protected=False,
                                                       display_name="Hardware 2")
        assert updated.visibility == "private" and not updated.is_protected
        assert updated.display_name == "Hardware 2"
        # A replacement of the namespace's attributes only: its contents stay.
        assert api.get(f"{NAMESPACES}/{name}", token=token).json()["properties"] == body["properties"]
    finally:
        api.put(f"{NAMESPACES}/{name}", token=token, json={"namespace": name, "protected": False})
        admin.image.delete_metadef_namespace(name)
    with pytest.raises(sdk_exceptions.NotFoundException):
        admin.image.get_metadef_namespace(name)


def test_objects_properties_and_resource_types_with_the_sdk(admin, api, token, namespaces):
    name = namespaces()["namespace"]
    made = admin.image.create_metadef_object(
        name, name="memory", description="Memory pages", required=["page_size"],
        properties={"page_size": {"title": "Page size", "type": "string", "pattern": "^(small|large|[0-9]+)$"}})
    assert made.name == "memory" and made.required == ["page_size"]
    admin.image.create_metadef_object(name, name="numa")
    assert sorted(item.name for item in admin.image.metadef_objects(name)) == ["memory", "numa"]
    renamed = admin.image.update_metadef_object(made, namespace=name, name="mem", description="Pages")
    assert renamed.name == "mem" and admin.image.get_metadef_object("mem", name).description == "Pages"
    with pytest.raises(sdk_exceptions.NotFoundException):
        admin.image.get_metadef_object("memory", name)
    admin.image.delete_metadef_object("numa", name)
    assert [item.name for item in admin.image.metadef_objects(name)] == ["mem"]

    prop = admin.image.create_metadef_property(name, name="watchdog", title="Watchdog", type="string",
                                               enum=["disabled", "reset", "poweroff"], default="disabled")
    assert prop.name == "watchdog" and prop.enum == ["disabled", "reset", "poweroff"]
    admin.image.create_metadef_property(name, name="vcpus", title="vCPUs", type="integer", minimum=1)
    admin.image.update_metadef_property(prop, name, name="watchdog_action", title="Watchdog action",
                                        type="string", enum=["reset", "poweroff"])
    shown = admin.image.get_metadef_property("watchdog_action", name)
    assert shown.title == "Watchdog action" and shown.enum == ["reset", "poweroff"]
    listed_properties = api.get(f"{NAMESPACES}/{name}/properties", token=token).json()["properties"]
    assert sorted(listed_properties) == ["vcpus", "watchdog_action"]
    admin.image.delete_metadef_property("vcpus", name)
    assert [item.name for item in admin.image.metadef_properties(name)] == ["watchdog_action"]

    types = [item.name for item in admin.image.metadef_resource_types()]
    assert {"OS::Glance::Image", "OS::Cinder::Volume", "OS::Nova::Flavor"} <= set(types)
    association = admin.image.create_metadef_resource_type_association(
        name, name="OS::Cinder::Volume", prefix="hw_", properties_target="image")
    assert association.name == "OS::Cinder::Volume" and association.properties_target == "image"
    associations = list(admin.image.metadef_resource_type_associations(name))
    assert [(item.name, item.prefix) for item in associations] == [("OS::Cinder::Volume", "hw_")]
    again = api.post(f"{NAMESPACES}/{name}/resource_types", token=token, json={"name": "OS::Cinder::Volume"})
    assert again.status_code == 409
    assert name in listed(api, token, "?resource_types=OS::Nova::Flavor,OS::Cinder::Volume")
    admin.image.delete_metadef_resource_type_association("OS::Cinder::Volume", name)
    assert list(admin.image.metadef_resource_type_associations(name)) == []
    assert name not in listed(api, token, "?resource_types=OS::Cinder::Volume")

    admin.image.delete_all_metadef_objects(name)
    admin.image.delete_all_metadef_properties(name)
    shown = api.get(f"{NAMESPACES}/{name}", token=token).json()
    assert "objects" not in shown and "properties" not in shown


def tag_names(api, token, name):
    response = api.get(f"{NAMESPACES}/{name}/tags", token=token)
    assert response.status_code == 200, response.text
    return sorted(tag["name"] for tag in response.json()["tags"])


def test_tags_replace_append_rename_and_delete(admin, api, token, namespaces):
    name = namespaces(tags=[{"name": "old"}])["namespace"]
    # POST /tags replaces the namespace's tags, with X-Openstack-Append adds to them.
    admin.image.get_metadef_namespace(name).set_tags(admin.image, ["a", "b"])
    assert tag_names(api, token, name) == ["a", "b"]
    admin.image.get_metadef_namespace(name).set_tags(admin.image, ["c"], append=True)
    assert tag_names(api, token, name) == ["a", "b", "c"]
    admin.image.add_tag_to_metadef_namespace(name, "d")
    assert tag_names(api, token, name) == ["a", "b", "c", "d"]
    # A name already there: 409 and nothing added, whether one or in bulk.
    assert api.post(f"{NAMESPACES}/{name}/tags/d", token=token).status_code == 409
    response = api.post(f"{NAMESPACES}/{name}/tags", token=token, headers={"X-Openstack-Append": "true"},
                        json={"tags": [{"name": "e"}, {"name": "a"}]})
    assert response.status_code == 409, response.text
    assert tag_names(api, token, name) == ["a", "b", "c", "d"]
    twice = api.post(f"{NAMESPACES}/{name}/tags", token=token, json={"tags": [{"name": "x"}, {"name": "x"}]})
    assert twice.status_code == 409 and "'tags'" in twice.json()["message"]
    # An empty list replaces nothing, as Glance's.
    assert api.post(f"{NAMESPACES}/{name}/tags", token=token, json={"tags": []}).status_code == 201
    assert tag_names(api, token, name) == ["a", "b", "c", "d"]

    shown = api.get(f"{NAMESPACES}/{name}/tags/d", token=token).json()
    assert shown["name"] == "d" and shown["created_at"].endswith("Z")
    renamed = api.put(f"{NAMESPACES}/{name}/tags/d", token=token, json={"name": "delta"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "delta"
    assert api.put(f"{NAMESPACES}/{name}/tags/delta", token=token, json={"name": "a"}).status_code == 409
    admin.image.remove_tag_from_metadef_namespace(name, "delta")
    assert api.get(f"{NAMESPACES}/{name}/tags/delta", token=token).status_code == 404
    page = api.get(f"{NAMESPACES}/{name}/tags?sort_key=name&sort_dir=asc&limit=2&marker=a", token=token).json()
    assert [tag["name"] for tag in page["tags"]] == ["b", "c"]
    admin.image.remove_tags_from_metadef_namespace(name)
    assert tag_names(api, token, name) == []


def test_another_projects_private_namespace_is_404(cloud, api, token, demo_token, namespaces):
    private = namespaces(visibility="private", objects=[{"name": "o"}], properties={
        "p": {"title": "P", "type": "string"}}, tags=[{"name": "t"}])["namespace"]
    public = namespaces(visibility="public")["namespace"]
    # The admin may make a private namespace for another project: that
    # project sees it, and no other.
    demo_project = cloud.connect("stratus-demo").current_project_id
    demos = namespaces(visibility="private", owner=demo_project)["namespace"]
    seen = listed(api, demo_token)
    assert public in seen and demos in seen and private not in seen
    assert private not in listed(api, demo_token, "?visibility=private")
    assert {private, public, demos} <= set(listed(api, token))
    for path in ("", "/objects", "/objects/o", "/properties", "/properties/p", "/tags", "/tags/t",
                 "/resource_types"):
        response = api.get(f"{NAMESPACES}/{private}{path}", token=demo_token)
        assert response.status_code == 404, (path, response.text)
    assert api.get(f"{NAMESPACES}?marker={private}", token=demo_token).status_code == 404
    assert api.get(f"{NAMESPACES}/{demos}", token=demo_token).json()["owner"] == demo_project

    # Writes take the admin role (Glance's default policy): a member may not
    # write even its own project's namespace.
    refused = [
        ("POST", NAMESPACES, {"namespace": unique("demo")}),
        ("POST", NAMESPACES, {"namespace": unique("demo"), "visibility": "public", "protected": True}),
        ("PUT", f"{NAMESPACES}/{demos}", {"namespace": demos}),
        ("DELETE", f"{NAMESPACES}/{demos}", None),
        ("POST", f"{NAMESPACES}/{public}/objects", {"name": "o"}),
        ("POST", f"{NAMESPACES}/{public}/properties", {"name": "p", "title": "P", "type": "string"}),
        ("POST", f"{NAMESPACES}/{public}/tags/t", None),
        ("POST", f"{NAMESPACES}/{public}/resource_types", {"name": "OS::Glance::Image"}),
    ]
    for method, path, body in refused:
        response = api.request(method, path, token=demo_token, json=body)
        assert response.status_code == 403, (method, path, response.text)
    assert api.get(f"{NAMESPACES}/{public}", token=token).json().keys() >= {"namespace"}
    assert "objects" not in api.get(f"{NAMESPACES}/{public}", token=token).json()
    assert api.get(f"{NAMESPACES}/{demos}", token=demo_token).status_code == 200
    # No token at all, or a forged one: 401.
    assert api.get(NAMESPACES).status_code == 401
    assert api.get(f"{NAMESPACES}/{public}", token=token[:-8] + "AAAAAAAA").status_code == 401
    assert api.post(NAMESPACES, token="not-a-token", json={"namespace": unique("forged")}).status_code == 401


def test_a_role_taken_away_stops_the_writes_it_allowed(cloud, api, token):
    made = make_project_admin(cloud)
    try:
        caller, admin = made["token"], made["connection"]
        first = unique("role-ns")
        assert api.post(NAMESPACES, token=caller, json={"namespace": first}).status_code == 201
        admin.identity.unassign_project_role_from_user(made["project"], made["user"],
                                                       admin.identity.find_role("admin"))
        second = unique("role-ns")
        for method, path, body in (("POST", NAMESPACES, {"namespace": second}),
                                   ("POST", f"{NAMESPACES}/{first}/tags/t", None),
                                   ("DELETE", f"{NAMESPACES}/{first}", None)):
            response = api.request(method, path, token=caller, json=body)
            assert response.status_code in (401, 403), (method, path, response.text)
        assert api.get(f"{NAMESPACES}/{second}", token=token).status_code == 404
        shown = api.get(f"{NAMESPACES}/{first}", token=token).json()
        assert "tags" not in shown
    finally:
        api.delete(f"{NAMESPACES}/{first}", token=token)
        made["remove"]()


def test_a_projects_admin_writes_its_own_private_namespaces_only(api, token, demo_token, project_admin,
                                                                namespaces):
    mine = unique("proj-ns")
    caller = project_admin["token"]
    response = api.post(NAMESPACES, token=caller, json={"namespace": mine, "objects": [{"name": "o"}]})
    assert response.status_code == 201, response.text
    try:
        assert response.json()["owner"] == project_admin["project"] and response.json()["visibility"] == "private"
        assert api.post(f"{NAMESPACES}/{mine}/tags/t", token=caller).status_code == 201
        assert api.post(f"{NAMESPACES}/{mine}/properties", token=caller,
                        json={"name": "p", "title": "P", "type": "boolean"}).status_code == 201
        assert api.get(f"{NAMESPACES}/{mine}", token=demo_token).status_code == 404
        assert mine in listed(api, token)
        # Public, protected or another project's: the cloud administrator's.
        public = namespaces(visibility="public")["namespace"]
        others = namespaces(visibility="private")["namespace"]
        refused = [
            ("POST", NAMESPACES, {"namespace": unique("p"), "visibility": "public"}, 403),
            ("POST", NAMESPACES, {"namespace": unique("p"), "protected": True}, 403),
            ("POST", NAMESPACES, {"namespace": unique("p"), "owner": "another-project"}, 403),
            ("PUT", f"{NAMESPACES}/{mine}", {"namespace": mine, "visibility": "public"}, 403),
            ("PUT", f"{NAMESPACES}/{mine}", {"namespace": mine, "protected": True}, 403),
            ("POST", f"{NAMESPACES}/{public}/objects", {"name": "o"}, 403),
            ("DELETE", f"{NAMESPACES}/{public}", None, 403),
            ("POST", f"{NAMESPACES}/{others}/objects", {"name": "o"}, 404),
        ]
        for method, path, body, status in refused:
            response = api.request(method, path, token=caller, json=body)
            assert response.status_code == status, (method, path, body, response.text)
        shown = api.get(f"{NAMESPACES}/{mine}", token=caller).json()
        assert shown["visibility"] == "private" and not shown["protected"]
        assert "objects" not in api.get(f"{NAMESPACES}/{public}", token=token).json()
    finally:
        assert api.delete(f"{NAMESPACES}/{mine}", token=caller).status_code == 204
    assert api.get(f"{NAMESPACES}/{mine}", token=token).status_code == 404


BAD_NAMESPACES = [
    ({"namespace": "x" * 81}, "namespace"),
    ({"namespace": ""}, "namespace"),
    ({"namespace": "a/b"}, "namespace"),
    ({"namespace": None, "display_name": "x"}, "namespace"),
    ({"visibility": "shared"}, "visibility"),
    ({"protected": "yes"}, "protected"),
    ({"description": "x" * 501}, "description"),
    ({"colour": "red"}, "colour"),
    ({"properties": {"cpu": {"type": "integer"}}}, "properties.cpu.title"),
    ({"properties": {"cpu": {"title": "CPU", "type": "int"}}}, "properties.cpu.type"),
    ({"properties": {"cpu": {"title": "CPU", "type": "integer", "minimum": 8, "maximum": 2}}},
     "properties.cpu.minimum"),
    ({"properties": {"cpu": {"title": "CPU", "type": "integer", "minimum": "1"}}}, "properties.cpu.minimum"),
    ({"properties": {"bus": {"title": "Bus", "type": "string", "pattern": "(unclosed"}}}, "properties.bus.pattern"),
    ({"properties": {"bus": {"title": "Bus", "type": "string", "enum": "scsi"}}}, "properties.bus.enum"),
    ({"properties": {"bus": {"title": "Bus", "type": "string", "maxLength": -1}}}, "properties.bus.maxLength"),
    ({"properties": {"bus": {"title": "Bus", "type": "array", "items": {"type": "list"}}}},
     "properties.bus.items.type"),
    ({"objects": [{"description": "no name"}]}, "objects[0].name"),
    ({"objects": [{"name": "o", "properties": {"x": {"type": "string"}}}]}, "objects[0].properties.x.title"),
    ({"objects": [{"name": "o", "required": ["a", "a"]}]}, "objects[0].required"),
    ({"tags": [{"name": "x" * 81}]}, "tags[0].name"),
    ({"resource_type_associations": [{"prefix": "hw_"}]}, "resource_type_associations[0].name"),
]


@pytest.mark.parametrize("body, field", BAD_NAMESPACES, ids=[field for _, field in BAD_NAMESPACES])
def test_a_bad_namespace_is_a_400_naming_the_field_and_nothing_is_made(api, token, body, field):
    name = body.get("namespace", unique("bad"))
    response = api.post(NAMESPACES, token=token, json={"namespace": name, **body})
    assert response.status_code == 400, response.text
    assert f"'{field}'" in response.json()["message"]
    if name:
        assert api.get(f"{NAMESPACES}/{name}", token=token).status_code == 404


def test_bad_contents_change_nothing(api, token, namespaces):
    name = namespaces(objects=[{"name": "o", "description": "kept"}], properties={
        "p": {"title": "P", "type": "string"}}, tags=[{"name": "t"}])["namespace"]
    before = api.get(f"{NAMESPACES}/{name}", token=token).json()
    # What the namespace was made with is in it.
    assert [(item["name"], item["description"]) for item in before["objects"]] == [("o", "kept")]
    assert before["properties"] == {"p": {"title": "P", "type": "string"}} and before["tags"] == [{"name": "t"}]
    cases = [
        ("POST", "/properties", {"title": "no name", "type": "string"}, 400, "name"),
        ("POST", "/properties", {"name": "q", "title": "Q", "type": "string", "readonly": "no"}, 400, "readonly"),
        ("POST", "/properties", {"name": "q", "title": "Q", "type": "string", "minLength": 5, "maxLength": 1},
         400, "minLength"),
        ("PUT", "/properties/p", {"name": "p", "title": "P", "type": "string", "operators": "<or>"}, 400,
         "operators"),
        ("POST", "/properties", {"name": "p", "title": "again", "type": "string"}, 409, None),
        ("POST", "/properties", '{"name": "q", "title": "Q", "type": "number", "minimum": 1e400}', 400, "minimum"),
        ("POST", "/properties", '{"name": "q", "title": "Q", "type": "array", "enum": [1, [2, -1e999]]}', 400,
         "enum[1][1]"),
        ("PUT", "/objects/o", {"name": "o", "properties": {"x": {"title": "X"}}}, 400, "properties.x.type"),
        ("POST", "/objects", {"name": "o"}, 409, None),
        ("POST", "/objects", {"name": "x" * 81}, 400, "name"),
        ("POST", "/properties", {"name": "hw/cpu", "title": "Q", "type": "string"}, 400, "name"),
        ("POST", "/tags", {"tags": [{"name": "u"}, {"nom": "v"}]}, 400, "tags[1].nom"),
        ("POST", "/tags", {"tags": "u"}, 400, "tags"),
        ("PUT", "/tags/t", {"name": ""}, 400, "name"),
        ("POST", "/resource_types", {"name": "OS::Glance::Image", "prefix": "x" * 81}, 400, "prefix"),
        ("PUT", "", {"namespace": name, "visibility": "community"}, 400, "visibility"),
        ("PUT", "", {"namespace": name, "created_at": "2020-01-01T00:00:00Z"}, 403, None),
        ("POST", "/objects", {"name": "o2", "self": "/elsewhere"}, 403, None),
    ]
    for method, path, body, status, field in cases:
        # Text bodies are sent as they are: JSON that Python's json would not write.
        sent = {"data": body, "headers": {"Content-Type": "application/json"}} if isinstance(body, str) else {
            "json": body}
        response = api.request(method, f"{NAMESPACES}/{name}{path}", token=token, **sent)
        assert response.status_code == status, (method, path, body, response.text)
        if field:
            assert f"'{field}'" in response.json()["message"], (path, response.text)
    assert api.get(f"{NAMESPACES}/{name}", token=token).json() == before


def test_a_resource_type_not_known_yet_is_made_by_its_first_association(api, token, namespaces):
    """As Glance: associating a namespace with a new resource type name
    makes the resource type."""
    new_type = f"OS::Custom::{unique('type')}"
    name = namespaces(resource_type_associations=[{"name": new_type, "properties_target": "image"}])["namespace"]
    listed_types = api.get("/image/v2/metadefs/resource_types", token=token).json()["resource_types"]
    assert new_type in [item["name"] for item in listed_types]
    assert name in listed(api, token, f"?resource_types={new_type}")
    assert api.get(f"{NAMESPACES}/{name}/resource_types", token=token).json()["resource_type_associations"][0][
        "properties_target"] == "image"


def test_names_are_unique(api, token, namespaces):
    for body, field in (({"objects": [{"name": "o"}, {"name": "o"}]}, "objects"),
                        ({"tags": [{"name": "t"}, {"name": "t"}]}, "tags"),
                        ({"resource_type_associations": [{"name": "OS::Glance::Image"}] * 2},
                         "resource_type_associations")):
        name = unique("twice")
        response = api.post(NAMESPACES, token=token, json={"namespace": name, **body})
        assert response.status_code == 409 and f"'{field}'" in response.json()["message"], response.text
        assert api.get(f"{NAMESPACES}/{name}", token=token).status_code == 404
    first = namespaces()["namespace"]
    second = namespaces()["namespace"]
    assert api.post(NAMESPACES, token=token, json={"namespace": first}).status_code == 409
    renamed = api.put(f"{NAMESPACES}/{second}", token=token, json={"namespace": first})
    assert renamed.status_code == 409
    api.post(f"{NAMESPACES}/{second}/properties", token=token, json={"name": "a", "title": "A", "type": "string"})
    api.post(f"{NAMESPACES}/{second}/properties", token=token, json={"name": "b", "title": "B", "type": "string"})
    clash = api.put(f"{NAMESPACES}/{second}/properties/b", token=token,
                    json={"name": "a", "title": "B", "type": "string"})
    assert clash.status_code == 409
    # The same names may be used again in another namespace.
    assert api.post(f"{NAMESPACES}/{first}/properties", token=token,
                    json={"name": "a", "title": "A", "type": "string"}).status_code == 201


def test_list_filters_sorting_and_paging(api, token, namespaces):
    prefix = unique("page")
    made = [namespaces(namespace=f"{prefix}-{index}", visibility="public" if index % 2 else "private",
                       resource_type_associations=[{"name": "OS::Nova::Aggregate"}] if index < 3 else [])
            ["namespace"] for index in range(5)]
    names = [name for name in listed(api, token, "?sort_key=namespace&sort_dir=asc&limit=2")
             if name.startswith(prefix)]
    assert names == made
    descending = [name for name in listed(api, token, "?sort_key=namespace&sort_dir=desc&limit=2")
                  if name.startswith(prefix)]
    assert descending == made[::-1]
    public = [name for name in listed(api, token, "?visibility=public") if name.startswith(prefix)]
    assert sorted(public) == [made[1], made[3]]
    aggregates = [name for name in listed(api, token, "?resource_types=OS::Nova::Aggregate")
                  if name.startswith(prefix)]
    assert sorted(aggregates) == made[:3]
    page = api.get(f"{NAMESPACES}?sort_key=namespace&sort_dir=asc&limit=1&marker={made[1]}", token=token).json()
    assert [item["namespace"] for item in page["namespaces"]] == [made[2]]
    assert page["first"].startswith("/v2/metadefs/namespaces") and page["schema"] == "/v2/schemas/metadefs/namespaces"
    for query, field in (("?limit=x", "limit"), ("?sort_dir=up", "sort_dir"), ("?sort_key=colour", "sort_key"),
                         ("?visibility=shared", "visibility")):
        response = api.get(NAMESPACES + query, token=token)
        assert response.status_code == 400 and f"'{field}'" in response.json()["message"], query
    assert api.get(f"{NAMESPACES}?marker=no-such-namespace", token=token).status_code == 404


def test_schemas(api, token):
    expected = {"namespace": "namespace", "namespaces": "namespaces", "object": "object", "objects": "objects",
                "property": "property", "properties": "properties", "tag": "tag", "tags": "tags",
                "resource_type": "resource_type_association", "resource_types": "resource_type_associations"}
    for path, name in expected.items():
        response = api.get(f"/image/v2/schemas/metadefs/{path}", token=token)
        assert response.status_code == 200 and response.json()["name"] == name, path
    namespace = api.get("/image/v2/schemas/metadefs/namespace", token=token).json()
    assert namespace["properties"]["namespace"]["maxLength"] == 80
    assert namespace["properties"]["visibility"]["enum"] == ["public", "private"]
    assert api.get("/image/v2/schemas/metadefs/nothing", token=token).status_code == 404


@pytest.mark.django_db
def test_list_and_show_query_counts_stay_flat(api, token, namespaces):
    """A page of 1 or 12 namespaces, and a namespace holding 1 or 12 of
    each kind of content, cost the same number of queries."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIRequestFactory

    from images.api.metadefs import NamespaceListView, NamespaceView

    prefix = unique("count")
    for index in range(12):
        namespaces(namespace=f"{prefix}-{index:02}", resource_type_associations=[
            {"name": "OS::Glance::Image", "prefix": "hw_"}, {"name": "OS::Nova::Flavor"}])

    def contents(count):
        return {"properties": {f"p{index}": {"title": "P", "type": "string"} for index in range(count)},
                "objects": [{"name": f"o{index}"} for index in range(count)],
                "tags": [{"name": f"t{index}"} for index in range(count)],
                "resource_type_associations": [{"name": "OS::Glance::Image"}]}
    small = namespaces(**contents(1))["namespace"]
    large = namespaces(**contents(12))["namespace"]

    factory = APIRequestFactory()
    listing, showing = NamespaceListView.as_view(), NamespaceView.as_view()
    listing(factory.get("/image/v2/metadefs/namespaces?limit=1", HTTP_X_AUTH_TOKEN=token))  # warms token caches
    counts = []
    for limit in (1, 12):
        request = factory.get(f"/image/v2/metadefs/namespaces?resource_types=OS::Nova::Flavor&limit={limit}",
                              HTTP_X_AUTH_TOKEN=token)
        with CaptureQueriesContext(connection) as queries:
            response = listing(request)
        assert len(response.data["namespaces"]) == limit
        counts.append(len(queries))
    assert counts[0] == counts[1]
    counts = []
    for name, size in ((small, 1), (large, 12)):
        request = factory.get(f"/image/v2/metadefs/namespaces/{name}", HTTP_X_AUTH_TOKEN=token)
        with CaptureQueriesContext(connection) as queries:
            response = showing(request, namespace=name)
        assert len(response.data["objects"]) == len(response.data["tags"]) == len(response.data["properties"]) == size
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_the_openstack_cli_manages_metadefs(cloud, api, token):
    name = unique("cli-ns")
    created = cloud.openstack("image", "metadef", "namespace", "create", "--public", "--protected",
                              "--display-name", "From the CLI", name, "-f", "json")
    try:
        assert created["visibility"] == "public" and created["protected"] is True
        assert name in [item["namespace"] for item in cloud.openstack(
            "image", "metadef", "namespace", "list", "-f", "json")]
        assert "OS::Glance::Image" in [item["Name"] for item in cloud.openstack(
            "image", "metadef", "resource", "type", "list", "-f", "json")]
        prop = cloud.openstack("image", "metadef", "property", "create", "--name", "os_type", "--title", "OS",
                               "--type", "string", "--schema", '{"enum": ["linux", "windows"]}', name, "-f", "json")
        assert prop["enum"] == ["linux", "windows"]
        cloud.openstack("image", "metadef", "object", "create", "--namespace", name, "boot", "-f", "json")
        assert [item["name"] for item in cloud.openstack(
            "image", "metadef", "object", "list", name, "-f", "json")] == ["boot"]
        cloud.openstack("image", "metadef", "resource", "type", "association", "create", name,
                        "OS::Nova::Flavor", "-f", "json")
        assert cloud.openstack("image", "metadef", "resource", "type", "association", "list", name,
                               "-f", "json") == [{"Name": "OS::Nova::Flavor"}]
        refused = cloud.openstack("image", "metadef", "namespace", "delete", name, expect_fail=True)
        assert "protected" in refused.stderr
        cloud.openstack("image", "metadef", "namespace", "set", "--public", "--unprotected", name)
        shown = cloud.openstack("image", "metadef", "namespace", "show", name, "-f", "json")
        assert shown["protected"] is False and shown["visibility"] == "public"
        cloud.openstack("image", "metadef", "namespace", "delete", name)
    finally:
        api.put(f"{NAMESPACES}/{name}", token=token, json={"namespace": name})
        api.delete(f"{NAMESPACES}/{name}", token=token)
    assert api.get(f"{NAMESPACES}/{name}", token=token).status_code == 404


def test_a_system_scoped_admin_names_the_owner(cloud, api, token):
    """A system-scoped token has no project to own a namespace: it names
    one, or gets a 400 naming `owner`."""
    system = cloud.token("stratus-system")
    name = unique("sys-ns")
    response = api.post(NAMESPACES, token=system, json={"namespace": name})
    assert response.status_code == 400 and "'owner'" in response.json()["message"]
    assert api.get(f"{NAMESPACES}/{name}", token=token).status_code == 404
    demo_project = cloud.connect("stratus-demo").current_project_id
    response = api.post(NAMESPACES, token=system, json={"namespace": name, "owner": demo_project})
    assert response.status_code == 201, response.text
    try:
        assert api.get(f"{NAMESPACES}/{name}", token=cloud.token("stratus-demo")).json()["owner"] == demo_project
    finally:
        assert api.delete(f"{NAMESPACES}/{name}", token=system).status_code == 204
