"""Admin panels of identity: projects, users, groups and roles (list,
create, edit, delete), group members, and role assignments (assign a role
to a user or group on a project, revoke it). Keystone does not page these
lists (it has no marker): each is one call."""
from django.urls import reverse

from dashboard.client import ApiFailure
from dashboard.views.admin import (
    action, admin_panel, checked, deleting, field, filters, form, link, page, project_names, project_options, row,
    submit, table,
)

IDENTITY = "/identity/v3"


def yes(value):
    return "yes" if value else "no"


def project_fields(values):
    return [field("name", "Name", required=True, value=values.get("name", "")),
            field("description", "Description", "textarea", values.get("description", "")),
            field("enabled", "Enabled", "checkbox", values.get("enabled", True))]


def user_fields(values, creating, names):
    fields = [field("name", "Name", required=True, value=values.get("name", "")),
              field("email", "Email", "email", values.get("email", "")),
              field("password", "Password" if creating else "New password (blank: unchanged)", "password",
                    required=creating),
              field("default_project_id", "Default project", "select", values.get("default_project_id", ""),
                    options=project_options(names, "(none)")),
              field("enabled", "Enabled", "checkbox", values.get("enabled", True))]
    return fields


def named_fields(values):
    return [field("name", "Name", required=True, value=values.get("name", "")),
            field("description", "Description", "textarea", values.get("description", ""))]


def body_of(kind, post, creating):
    """The API's body from a create or edit form of `kind`."""
    body = {"name": post.get("name", "").strip()}
    if kind in ("projects", "groups", "roles"):
        body["description"] = post.get("description", "")
    if kind in ("projects", "users"):
        body["enabled"] = checked(post, "enabled")
    if kind == "users":
        body["email"] = post.get("email", "").strip()
        body["default_project_id"] = post.get("default_project_id") or None
        if post.get("password") or creating:
            body["password"] = post.get("password", "")
    return body


KINDS = {
    # kind: (title, member name in the API's envelope, columns)
    "projects": ("Projects", "project", ["Name", "ID", "Domain", "Enabled", "Description"]),
    "users": ("Users", "user", ["Name", "ID", "Email", "Enabled", "Default project"]),
    "groups": ("Groups", "group", ["Name", "ID", "Description"]),
    "roles": ("Roles", "role", ["Name", "ID", "Description"]),
}


def cells(kind, entity, names):
    name = link(entity["name"], reverse("dashboard:admin_identity_edit", args=[kind, entity["id"]]))
    if kind == "projects":
        return [name, entity["id"], entity.get("domain_id", ""), yes(entity.get("enabled", True)),
                entity.get("description") or ""]
    if kind == "users":
        return [name, entity["id"], entity.get("email") or "", yes(entity.get("enabled", True)),
                names.get(entity.get("default_project_id"), "—")]
    return [name, entity["id"], entity.get("description") or ""]


def kind_fields(kind, values, creating, names):
    if kind == "projects":
        return project_fields(values)
    if kind == "users":
        return user_fields(values, creating, names)
    return named_fields(values)


def known(kind):
    if kind not in KINDS:
        raise ApiFailure(404, f"There is no identity panel {kind!r}: {', '.join(KINDS)}.")
    return KINDS[kind]


@admin_panel
def identity(request, kind):
    title, member, columns = known(kind)
    error = ""
    if request.method == "POST":
        def create(post):
            body = body_of(kind, post, creating=True)
            return f"Created {member} {body['name']}.", [
                (member, lambda: request.api.post(f"{IDENTITY}/{kind}", {member: body}))]

        done, error = submit(request, {"create": create,
                                       "delete": deleting(request, member, f"{IDENTITY}/{kind}")})
        if done:
            return done
    names = project_names(request)
    listing = request.api.get(f"{IDENTITY}/{kind}")[kind]
    rows = [row(entity["id"], entity["name"], cells(kind, entity, names),
                [action("Delete", confirm=f"Delete {member} {entity['name']}?", op="delete",
                        id=entity["id"], name=entity["name"])])
            for entity in sorted(listing, key=lambda entity: entity["name"])]
    values = request.POST if request.method == "POST" else {}
    fresh = {"enabled": True} if not values else {**values.dict(), "enabled": checked(values, "enabled")}
    return page(request, title, f"admin-{kind}", error=error, tables=[
        table(f"admin-{kind}", columns, rows, f"No {kind} yet — create one below.")],
        forms=[form(f"{member}-create", f"Create a {member}", "create", kind_fields(kind, fresh, True, names))])


@admin_panel
def identity_edit(request, kind, entity_id):
    title, member, _ = known(kind)
    url = f"{IDENTITY}/{kind}/{entity_id}"
    error = ""
    if request.method == "POST":
        def edit(post):
            return f"Saved {member} {post.get('name', '')}.", [
                (member, lambda: request.api.patch(url, {member: body_of(kind, post, creating=False)}))]

        def members(verb):
            def operation(post):
                user_id = post.get("user_id", "")
                path = f"{url}/users/{user_id}"
                return f"{'Added' if verb == 'add' else 'Removed'} the member.", [
                    ("member", lambda: request.api.put(path, {}) if verb == "add" else request.api.delete(path))]
            return operation

        done, error = submit(request, {"edit": edit, "add_member": members("add"),
                                       "remove_member": members("remove")})
        if done:
            return done
    entity = request.api.get(url)[member]
    names = project_names(request) if kind == "users" else {}
    values = {**entity, **request.POST.dict(), "enabled": checked(request.POST, "enabled")} \
        if request.method == "POST" else entity
    tables, forms = [], [form(f"{member}-edit", f"Edit {entity['name']}", "edit",
                              kind_fields(kind, values, False, names), "Save")]
    if kind == "groups":
        in_group = request.api.get(f"{url}/users")["users"]
        ids = {user["id"] for user in in_group}
        tables.append(table("group-members", ["User"], [
            row(user["id"], user["name"], [user["name"]],
                [action("Remove", confirm=f"Remove {user['name']} from {entity['name']}?", op="remove_member",
                        user_id=user["id"])]) for user in in_group], "No members yet.", caption="Members"))
        others = [(user["id"], user["name"]) for user in request.api.get(f"{IDENTITY}/users")["users"]
                  if user["id"] not in ids]
        if others:
            forms.append(form("group-member-add", "Add a member", "add_member",
                              [field("user_id", "User", "select", options=sorted(others, key=lambda pair: pair[1]))],
                              "Add"))
    links = [link(f"All {kind}", reverse("dashboard:admin_identity", args=[kind]))]
    if kind in ("projects", "users"):
        scope = "project" if kind == "projects" else "user"
        links.append(link("Role assignments", f"{reverse('dashboard:admin_role_assignments')}?{scope}={entity_id}"))
    if kind == "projects":
        links.append(link("Quotas", f"{reverse('dashboard:admin_quotas')}?project={entity_id}"))
    return page(request, f"{title[:-1]} {entity['name']}", f"admin-{kind}", tables=tables, forms=forms,
                error=error, links=links)


@admin_panel
def role_assignments(request):
    """Who has which role on which project; assign and revoke."""
    error = ""
    if request.method == "POST":
        def grant(verb):
            def operation(post):
                actor = "groups" if post.get("actor", "").startswith("group:") else "users"
                actor_id = post.get("actor", "").split(":", 1)[-1]
                path = f"{IDENTITY}/projects/{post.get('project', '')}/{actor}/{actor_id}/roles/{post.get('role', '')}"
                return f"{'Assigned' if verb == 'assign' else 'Revoked'} the role.", [
                    ("role", lambda: request.api.put(path, {}) if verb == "assign" else request.api.delete(path))]
            return operation

        done, error = submit(request, {"assign": grant("assign"), "revoke": grant("revoke")})
        if done:
            return done
    params = {"include_names": "true"}
    if request.GET.get("project"):
        params["scope.project.id"] = request.GET["project"]
    if request.GET.get("user"):
        params["user.id"] = request.GET["user"]
    assignments = [entry for entry in request.api.get(f"{IDENTITY}/role_assignments", **params)["role_assignments"]
                   if "project" in entry.get("scope", {})]
    names = project_names(request)
    users = sorted(request.api.get(f"{IDENTITY}/users")["users"], key=lambda user: user["name"])
    groups = sorted(request.api.get(f"{IDENTITY}/groups")["groups"], key=lambda group: group["name"])
    roles = sorted(request.api.get(f"{IDENTITY}/roles")["roles"], key=lambda role: role["name"])
    rows = []
    for entry in assignments:
        kind = "user" if "user" in entry else "group"
        actor, project, role = entry[kind], entry["scope"]["project"], entry["role"]
        label = f"{role['name']} for {actor.get('name', actor['id'])} on {project.get('name', project['id'])}"
        rows.append(row(f"{kind}-{actor['id']}-{project['id']}-{role['id']}", label, [
            f"{actor.get('name', actor['id'])} ({kind})", project.get("name", project["id"]), role["name"]],
            [action("Revoke", confirm=f"Revoke {label}?", op="revoke", actor=f"{kind}:{actor['id']}",
                    project=project["id"], role=role["id"])]))
    actors = [(f"user:{user['id']}", user["name"]) for user in users] + \
             [(f"group:{group['id']}", f"{group['name']} (group)") for group in groups]
    search = filters(request, "assignment-filters", [
        field("project", "Project", "select", options=project_options(names, "(all projects)")),
        field("user", "User", "select", options=[("", "(all users)")] + [(user["id"], user["name"]) for user in users]),
    ])
    return page(request, "Role assignments", "admin-role-assignments", error=error, filters=search, tables=[
        table("role-assignments", ["User or group", "Project", "Role"], rows, "No role assignments match.")],
        forms=[form("role-assign", "Assign a role on a project", "assign", [
            field("actor", "User or group", "select", request.GET.get("user") and f"user:{request.GET['user']}",
                  options=actors),
            field("project", "Project", "select", request.GET.get("project", ""), options=project_options(names)),
            field("role", "Role", "select", options=[(role["id"], role["name"]) for role in roles]),
        ], "Assign")])
