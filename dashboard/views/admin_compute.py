"""Admin panels of compute: every project's instances with their hosts,
and flavors with their extra specs and project access."""
from django.urls import reverse

from dashboard.views.admin import (
    action, admin_panel, checked, deleting, field, filters, form, link, number, page, project_names,
    project_options, row, submit, table,
)
from dashboard.views.common import COMPUTE, paged

STATUSES = ("ACTIVE", "BUILD", "SHUTOFF", "ERROR", "PAUSED", "SUSPENDED", "RESIZE", "VERIFY_RESIZE", "REBOOT",
            "DELETED")


@admin_panel
def instances(request):
    """Servers of all projects, filtered by project, host and status on
    the server (the API's own filters), a page at a time."""
    names = project_names(request)
    params = {"all_tenants": "1"}
    for name, param in (("project", "project_id"), ("host", "host"), ("status", "status")):
        if request.GET.get(name):
            params[param] = request.GET[name]
    servers, pages = paged(request, f"{COMPUTE}/servers/detail", "servers", **params)
    rows = []
    for server in servers:
        addresses = ", ".join(address["addr"] for entries in (server.get("addresses") or {}).values()
                              for address in entries)
        rows.append(row(server["id"], server["name"], [
            link(server["name"] or server["id"], reverse("dashboard:instance", args=[server["id"]])),
            names.get(server.get("tenant_id"), server.get("tenant_id", "")),
            server.get("OS-EXT-SRV-ATTR:host") or "—", server["status"], server.get("OS-EXT-STS:task_state") or "",
            addresses, (server.get("flavor") or {}).get("original_name", ""), server.get("created", "")]))
    search = filters(request, "instance-filters", [
        field("project", "Project", "select", options=project_options(names, "(all projects)")),
        field("host", "Host", placeholder="compute-1"),
        field("status", "Status", "select", options=[("", "(any)")] + [(status, status) for status in STATUSES]),
    ])
    return page(request, "All instances", "admin-instances", filters=search, tables=[
        table("admin-instances", ["Name", "Project", "Host", "Status", "Task", "Addresses", "Flavor", "Created"],
              rows, "No instances match." if search["active"] else "No instances in any project yet.",
              pages=pages)])


@admin_panel
def flavors(request):
    error = ""
    if request.method == "POST":
        def create(post):
            flavor = {"name": post.get("name", "").strip(), "vcpus": number(post.get("vcpus")),
                      "ram": number(post.get("ram")), "disk": number(post.get("disk") or 0),
                      "os-flavor-access:is_public": not checked(post, "private")}
            if post.get("id", "").strip():
                flavor["id"] = post["id"].strip()
            return f"Created flavor {flavor['name']}.", [
                ("flavor", lambda: request.api.post(f"{COMPUTE}/flavors", {"flavor": flavor}))]

        done, error = submit(request, {"create": create,
                                       "delete": deleting(request, "flavor", f"{COMPUTE}/flavors")})
        if done:
            return done
    listing, pages = paged(request, f"{COMPUTE}/flavors/detail", "flavors", is_public="None")
    rows = [row(flavor["id"], flavor["name"], [
        link(flavor["name"], reverse("dashboard:admin_flavor", args=[flavor["id"]])), flavor["id"],
        flavor["vcpus"], f"{flavor['ram']} MB", f"{flavor['disk']} GB",
        "yes" if flavor.get("os-flavor-access:is_public", True) else "no (private)"],
        [action("Delete", confirm=f"Delete flavor {flavor['name']}?", op="delete", id=flavor["id"],
                name=flavor["name"])])
        for flavor in listing]
    return page(request, "Flavors", "admin-flavors", error=error, tables=[
        table("flavors", ["Name", "ID", "vCPUs", "RAM", "Disk", "Public"], rows,
              "No flavors yet — create one below.", pages=pages)], forms=[
        form("flavor-create", "Create a flavor", "create", [
            field("name", "Name", required=True, value=request.POST.get("name", "")),
            field("id", "ID (optional: a UUID is made)", value=request.POST.get("id", "")),
            field("vcpus", "vCPUs", "number", request.POST.get("vcpus", 1), required=True, min=1),
            field("ram", "RAM (MB)", "number", request.POST.get("ram", 512), required=True, min=1),
            field("disk", "Root disk (GB)", "number", request.POST.get("disk", 1)),
            field("private", "Private (only projects given access)", "checkbox", checked(request.POST, "private")),
        ])])


@admin_panel
def flavor(request, flavor_id):
    """A flavor's extra specs and, when it is private, the projects that
    may use it."""
    base = f"{COMPUTE}/flavors/{flavor_id}"
    error = ""
    if request.method == "POST":
        def set_spec(post):
            key = post.get("key", "").strip()
            return f"Set {key}.", [("extra spec", lambda: request.api.post(
                f"{base}/os-extra_specs", {"extra_specs": {key: post.get("value", "")}}))]

        def unset_spec(post):
            return f"Removed {post.get('key', '')}.", [("extra spec", lambda: request.api.delete(
                f"{base}/os-extra_specs/{post.get('key', '')}"))]

        def access(verb):
            def operation(post):
                project = post.get("project", "")
                return f"{'Gave' if verb == 'add' else 'Took'} access {'to' if verb == 'add' else 'from'} " \
                       f"{project}.", [("access", lambda: request.api.post(
                           f"{base}/action", {f"{verb}TenantAccess": {"tenant": project}}))]
            return operation

        done, error = submit(request, {"set": set_spec, "unset": unset_spec, "add": access("add"),
                                       "remove": access("remove")})
        if done:
            return done
    body = request.api.get(base)["flavor"]
    specs = request.api.get(f"{base}/os-extra_specs")["extra_specs"]
    names = project_names(request)
    spec_rows = [row(key, key, [key, value], [action("Remove", confirm=f"Remove extra spec {key}?", op="unset",
                                                     key=key)])
                 for key, value in sorted(specs.items())]
    tables = [table("extra-specs", ["Key", "Value"], spec_rows, "No extra specs.", caption="Extra specs")]
    forms = [form("extra-spec-set", "Set an extra spec", "set", [
        field("key", "Key", required=True, placeholder="hw:cpu_policy", value=request.POST.get("key", "")),
        field("value", "Value", value=request.POST.get("value", ""))], "Set")]
    public = body.get("os-flavor-access:is_public", True)
    if not public:
        granted = [entry["tenant_id"] for entry in request.api.get(f"{base}/os-flavor-access")["flavor_access"]]
        tables.append(table("flavor-access", ["Project"], [
            row(project, names.get(project, project), [names.get(project, project)],
                [action("Remove", confirm=f"Take access to {body['name']} from {names.get(project, project)}?",
                        op="remove", project=project)])
            for project in granted], "No project may use this private flavor yet.", caption="Project access"))
        forms.append(form("flavor-access-add", "Give a project access", "add", [
            field("project", "Project", "select", options=project_options(
                {key: name for key, name in names.items() if key not in granted}))], "Give access"))
    summary = f"{body['vcpus']} vCPUs, {body['ram']} MB RAM, {body['disk']} GB disk, " \
              f"{'public' if public else 'private'}."
    return page(request, f"Flavor {body['name']}", "admin-flavors", tables=tables, forms=forms, error=error,
                intro=summary, links=[link("All flavors", reverse("dashboard:admin_flavors"))])
