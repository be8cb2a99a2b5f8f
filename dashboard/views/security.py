"""Security groups and their rules."""
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from dashboard.auth import panel
from dashboard.views.common import MAX_PAGE_SIZE, NETWORK, deleted, neutron_form, paged

GROUPS = f"{NETWORK}/security-groups"
RULES = f"{NETWORK}/security-group-rules"


@panel
def security_groups(request):
    error = ""
    if request.method == "POST":
        name = request.POST.get("name", "").strip()
        made = {}

        def create():
            made.update(request.api.post(GROUPS, {"security_group": {
                "name": name, "description": request.POST.get("description", "").strip()}})["security_group"])

        error = neutron_form(request, [("group", create)])
        if not error:
            messages.success(request, f"Created security group {name}.")
            return redirect("dashboard:security_group", group_id=made["id"])
    rows, pages = paged(request, GROUPS, "security_groups", project_id=request.credentials.project_id)
    listing = [{**group, "rule_count": len(group.get("security_group_rules", []))} for group in rows]
    return render(request, "dashboard/security_groups.html", {
        "groups": listing, **pages, "error": error,
        "form": request.POST, "section": "security_groups"}, status=400 if error else 200)


def port_bound(text):
    """A port bound as typed: blank is none, digits a number; anything else
    goes to the API as it is, which names the field it refuses."""
    text = text.strip()
    if not text:
        return None
    return int(text) if text.isdigit() else text


def rule_body(group_id, post):
    rule = {"security_group_id": group_id, "direction": post.get("direction", ""),
            "ethertype": post.get("ethertype", "IPv4"),
            "protocol": post.get("protocol", "").strip() or None,
            "port_range_min": port_bound(post.get("port_range_min", "")),
            "port_range_max": port_bound(post.get("port_range_max", ""))}
    if post.get("remote") == "group":
        rule["remote_group_id"] = post.get("remote_group_id", "")
    elif post.get("remote_ip_prefix", "").strip():
        rule["remote_ip_prefix"] = post["remote_ip_prefix"].strip()
    return {"security_group_rule": rule}


def rule_row(rule, group_names):
    low, high = rule.get("port_range_min"), rule.get("port_range_max")
    ports = "any" if low is None else str(low) if high in (None, low) else f"{low}–{high}"
    if rule.get("remote_group_id"):
        remote = f"group {group_names.get(rule['remote_group_id'], rule['remote_group_id'])}"
    else:
        remote = rule.get("remote_ip_prefix") or ("0.0.0.0/0" if rule.get("ethertype") == "IPv4" else "::/0")
    return {**rule, "ports": ports, "remote": remote, "protocol_label": rule.get("protocol") or "any"}


@panel
def security_group(request, group_id):
    """A group with its rules, and the form that adds one."""
    group = request.api.get(f"{GROUPS}/{group_id}")["security_group"]
    error = ""
    if request.method == "POST":
        error = neutron_form(request, [("rule", lambda: request.api.post(RULES, rule_body(group_id, request.POST)))])
        if not error:
            messages.success(request, "Added the rule.")
            return redirect("dashboard:security_group", group_id=group_id)
    groups = request.api.get(GROUPS, project_id=group["project_id"], limit=MAX_PAGE_SIZE)["security_groups"]
    names = {other["id"]: other["name"] or other["id"] for other in groups}
    rules = sorted((rule_row(rule, names) for rule in group.get("security_group_rules", [])),
                   key=lambda rule: (rule["direction"], rule["ethertype"], rule["protocol_label"], rule["ports"]))
    return render(request, "dashboard/security_group.html", {
        "group": group, "rules": rules, "groups": groups, "error": error,
        "form": request.POST if request.method == "POST" else {"direction": "ingress", "ethertype": "IPv4",
                                                               "remote": "cidr"},
        "section": "security_groups"}, status=400 if error else 200)


@require_POST
@panel
def security_group_delete(request, group_id):
    group = request.api.get(f"{GROUPS}/{group_id}")["security_group"]
    if deleted(request, f"{GROUPS}/{group_id}", f"Deleted security group {group['name'] or group_id}."):
        return redirect("dashboard:security_groups")
    return redirect("dashboard:security_group", group_id=group_id)


@require_POST
@panel
def rule_delete(request, rule_id):
    rule = request.api.get(f"{RULES}/{rule_id}")["security_group_rule"]
    deleted(request, f"{RULES}/{rule_id}", "Deleted the rule.")
    return redirect("dashboard:security_group", group_id=rule["security_group_id"])
