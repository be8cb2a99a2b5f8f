"""Admin panels: what they share (the admin check, tables, forms, paging,
the POSTed operation) and the operator's panels for hypervisors, compute
services and network agents, and quotas. Every panel is one
admin_panel.html page declared here; every change is an API call with the
admin's token."""
from functools import wraps

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse

from dashboard.auth import panel
from dashboard.client import ApiFailure
from dashboard.views.common import COMPUTE, NETWORK, bar, neutron_form, page_size


def admin_panel(view):
    """An admin panel: a token the API would not treat as admin gets the
    403 page before any call (some listings, such as flavors, are open to
    members, but their admin panel is not)."""

    @panel
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.credentials.is_admin:
            raise ApiFailure(403, "This panel is for administrators: your token has no admin role on the "
                                  "admin project.")
        return view(request, *args, **kwargs)

    return wrapper


def volume_root(request):
    """Cinder's URLs carry a project: the admin's own."""
    return f"/volume/v3/{request.credentials.project_id}"


def link(text, url):
    return {"text": text, "url": url}


def state(text, up):
    return {"text": text, "state": "up" if up else "down"}


def action(label, confirm="", **fields):
    """A row's button: a POST of `fields` to the page itself (asking
    `confirm` first, for what cannot be undone)."""
    return {"label": label, "confirm": confirm, "fields": fields}


def row(key, name, cells, actions=()):
    return {"id": key, "name": name, "cells": cells, "actions": list(actions)}


def table(key, columns, rows, empty, caption="", pages=None):
    for entry in rows:  # each cell with its column's name (a phone's layout shows it beside the value)
        entry["labelled"] = list(zip(columns, entry["cells"]))
    return {"id": key, "columns": columns, "rows": rows, "empty": empty, "caption": caption,
            "has_actions": any(entry["actions"] for entry in rows), **(pages or {})}


def field(name, label, kind="text", value="", options=(), required=False, **extra):
    if value is None:
        value = ""
    return {"name": name, "label": label, "type": kind, "value": value, "options": list(options),
            "required": required, **extra}


def form(key, title, op, fields, submit="Create", help_text=""):
    return {"id": key, "title": title, "op": op, "fields": fields, "submit": submit, "help": help_text}


def filters(request, key, fields):
    """A GET form above a list; the page's current values are kept in it."""
    for entry in fields:
        entry["value"] = request.GET.get(entry["name"], "")
    return {"id": key, "fields": fields, "limit": page_size(request),
            "active": any(request.GET.get(entry["name"]) for entry in fields)}


def page(request, title, section, tables=(), forms=(), error="", **extra):
    return render(request, "dashboard/admin_panel.html", {
        "title": title, "section": section, "tables": tables, "forms": forms, "error": error, **extra,
    }, status=400 if error else 200)


def number(value):
    """A form's number for the API; what is not one goes as typed, so the
    API's own message names the field."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def checked(post, name):
    return post.get(name) in ("1", "on", "true")


def submit(request, operations):
    """Runs the POSTed form: `operations[op](post)` gives (what it did, its
    API calls as neutron_form's steps). Done: a redirect to the page with
    the message; refused: (None, the API's message) to show in place."""
    operation = operations.get(request.POST.get("op", ""))
    if operation is None:
        return None, "This form is not one of this page's."
    done, steps = operation(request.POST)
    error = neutron_form(request, steps)
    if error:
        return None, error
    messages.success(request, done)
    return redirect(request.get_full_path()), ""


def deleting(request, what, collection):
    """The operation of a row's Delete button: DELETE <collection>/<id>."""
    def operation(post):
        return f"Deleted {what} {post.get('name', '')}.", [
            ("delete", lambda: request.api.delete(f"{collection}/{post.get('id', '')}"))]
    return operation


def project_names(request):
    return {project["id"]: project["name"] for project in request.api.get("/identity/v3/projects")["projects"]}


def project_options(names, blank=None):
    options = sorted(((key, name) for key, name in names.items()), key=lambda pair: pair[1])
    return ([("", blank)] if blank is not None else []) + options


@admin_panel
def hypervisors(request):
    listing = request.api.get(f"{COMPUTE}/os-hypervisors/detail")["hypervisors"]
    rows = [{"name": hypervisor["hypervisor_hostname"], "state": hypervisor.get("state"),
             "status": hypervisor.get("status"),
             "bars": [bar("vCPUs", hypervisor["vcpus_used"], hypervisor["vcpus"]),
                      bar("RAM", hypervisor["memory_mb_used"], hypervisor["memory_mb"], "MB"),
                      bar("Disk", hypervisor["local_gb_used"], hypervisor["local_gb"], "GB")]}
            for hypervisor in listing]
    return render(request, "dashboard/hypervisors.html", {"rows": rows, "section": "hypervisors",
                                                          "admin_url": reverse("admin:index")})


@admin_panel
def services(request):
    """Compute and volume services and network agents, with whether each
    has reported lately (the APIs' own up/down and alive)."""
    error = ""
    if request.method == "POST":
        def switch(post):
            status = "enabled" if post.get("status") == "enabled" else "disabled"
            return f"Service {post.get('host', '')} {status}.", [("service", lambda: request.api.put(
                f"{COMPUTE}/os-services/{post.get('service_id', '')}", {"status": status}))]

        done, error = submit(request, {"service": switch})
        if done:
            return done
    compute_rows = []
    for service in request.api.get(f"{COMPUTE}/os-services")["services"]:
        enable = service["status"] == "disabled"
        compute_rows.append(row(service["id"], f"{service['binary']} on {service['host']}", [
            service["binary"], service["host"], service.get("zone", ""), service["status"],
            state(service["state"], service["state"] == "up"), service.get("updated_at") or "never",
            service.get("disabled_reason") or ""],
            [action("Enable" if enable else "Disable", op="service", service_id=service["id"],
                    host=service["host"], status="enabled" if enable else "disabled")]))
    agent_rows = [row(agent["id"], f"{agent['agent_type']} on {agent['host']}", [
        agent["agent_type"], agent["host"], state("alive" if agent["alive"] else "dead", agent["alive"]),
        "up" if agent.get("admin_state_up") else "down", agent.get("heartbeat_timestamp") or "never"])
        for agent in request.api.get(f"{NETWORK}/agents")["agents"]]
    volume_rows = [row(f"{service['binary']}-{service['host']}", service["host"], [
        service["binary"], service["host"], service.get("zone", ""), service.get("status", ""),
        state(service.get("state", ""), service.get("state") == "up"), service.get("updated_at") or "never"])
        for service in request.api.get(f"{volume_root(request)}/os-services")["services"]]
    return page(request, "Services and agents", "admin-services", error=error, tables=[
        table("compute-services", ["Binary", "Host", "Zone", "Status", "State", "Last report", "Disabled reason"],
              compute_rows, "No compute service has reported yet.", caption="Compute services"),
        table("network-agents", ["Type", "Host", "Alive", "Admin state", "Last heartbeat"], agent_rows,
              "No network agent has reported yet.", caption="Network agents"),
        table("volume-services", ["Binary", "Host", "Zone", "Status", "State", "Last report"], volume_rows,
              "No volume service has reported yet.", caption="Volume services"),
    ])


def quota_fields(values, skip=("id",)):
    return [field(key, key.replace("_", " "), "number", value, min=-1)
            for key, value in values.items() if key not in skip and isinstance(value, int)
            and not isinstance(value, bool)]


@admin_panel
def quotas(request):
    """A project's compute, network and volume quotas (-1: unlimited)."""
    names = project_names(request)
    project_id = request.GET.get("project") or request.credentials.project_id
    if project_id not in names:
        raise ApiFailure(404, f"Could not find project: {project_id}.")
    compute_url = f"{COMPUTE}/os-quota-sets/{project_id}"
    network_url = f"{NETWORK}/quotas/{project_id}"
    volume_url = f"{volume_root(request)}/os-quota-sets/{project_id}"
    error = ""
    if request.method == "POST":
        def update(url, envelope, service):
            def operation(post):
                values = {key: number(value) for key, value in post.items()
                          if key not in ("op", "csrfmiddlewaretoken")}
                return (f"Updated the {service} quotas of {names[project_id]}.",
                        [(f"{service} quotas", lambda: request.api.put(url, {envelope: values}))])
            return operation

        done, error = submit(request, {"compute": update(compute_url, "quota_set", "compute"),
                                       "network": update(network_url, "quota", "network"),
                                       "volume": update(volume_url, "quota_set", "volume")})
        if done:
            return done
    compute = request.api.get(compute_url)["quota_set"]
    network = request.api.get(network_url)["quota"]
    volume = request.api.get(volume_url)["quota_set"]
    picker = filters(request, "quota-project", [field("project", "Project", "select",
                                                      options=project_options(names))])
    picker["fields"][0]["value"] = project_id
    return page(request, f"Quotas of {names[project_id]}", "admin-quotas", error=error, filters=picker,
                intro="-1 is unlimited.", forms=[
                    form("compute-quotas", "Compute", "compute", quota_fields(compute), "Save compute quotas"),
                    form("network-quotas", "Network", "network", quota_fields(network), "Save network quotas"),
                    form("volume-quotas", "Volume", "volume", quota_fields(volume), "Save volume quotas"),
                ])
