"""Admin panels of every project's images, networks (external and
provider networks made here) and volumes, and volume types with their
extra specs."""
from django.template.defaultfilters import filesizeformat
from django.urls import reverse

from dashboard.views.admin import (
    action, admin_panel, checked, deleting, field, form, link, number, page, project_names, project_options, row,
    submit, table, volume_root,
)
from dashboard.views.common import NETWORK, paged

NETWORK_TYPES = ("flat", "vxlan")


@admin_panel
def images(request):
    error = ""
    if request.method == "POST":
        done, error = submit(request, {"delete": deleting(request, "image", "/image/v2/images")})
        if done:
            return done
    names = project_names(request)
    listing, pages = paged(request, "/image/v2/images", "images")
    rows = [row(image["id"], image["name"] or image["id"], [
        link(image["name"] or image["id"], reverse("dashboard:image", args=[image["id"]])),
        names.get(image.get("owner"), image.get("owner") or "—"), image["status"], image["visibility"],
        image.get("disk_format") or "—", filesizeformat(image["size"]) if image.get("size") else "—",
        "yes" if image.get("protected") else "no"],
        [action("Delete", confirm=f"Delete image {image['name'] or image['id']}?", op="delete",
                id=image["id"], name=image["name"] or image["id"])])
        for image in listing]
    return page(request, "All images", "admin-images", error=error, tables=[
        table("admin-images", ["Name", "Owner", "Status", "Visibility", "Format", "Size", "Protected"], rows,
              "No images in any project yet.", pages=pages)])


@admin_panel
def networks(request):
    """Every project's networks; external and provider networks are made
    here (their attributes are the admin's to set)."""
    names = project_names(request)
    error = ""
    if request.method == "POST":
        def create(post):
            name = post.get("name", "").strip()
            network = {"name": name, "router:external": checked(post, "external"), "shared": checked(post, "shared"),
                       "provider:network_type": post.get("network_type", "")}
            if post.get("physical_network", "").strip():
                network["provider:physical_network"] = post["physical_network"].strip()
            if post.get("segmentation_id", "").strip():
                network["provider:segmentation_id"] = number(post["segmentation_id"].strip())
            if post.get("project"):
                network["project_id"] = post["project"]
            made = {}

            def create_network():
                made.update(request.api.post(f"{NETWORK}/networks", {"network": network})["network"])

            def create_subnet():
                subnet = {"network_id": made["id"], "name": f"{name}-subnet", "cidr": post["cidr"].strip(),
                          "ip_version": 4, "enable_dhcp": not network["router:external"]}
                if post.get("gateway", "").strip():
                    subnet["gateway_ip"] = post["gateway"].strip()
                request.api.post(f"{NETWORK}/subnets", {"subnet": subnet})

            steps = [("network", create_network)]
            if post.get("cidr", "").strip():
                steps.append(("subnet", create_subnet))
            return f"Created network {name}.", steps

        done, error = submit(request, {"create": create,
                                       "delete": deleting(request, "network", f"{NETWORK}/networks")})
        if done:
            return done
    listing, pages = paged(request, f"{NETWORK}/networks", "networks")
    rows = [row(network["id"], network["name"] or network["id"], [
        network["name"] or network["id"], names.get(network.get("project_id"), network.get("project_id", "")),
        len(network.get("subnets") or []), "yes" if network.get("shared") else "no",
        "yes" if network.get("router:external") else "no", network.get("provider:network_type") or "",
        network.get("provider:physical_network") or "—", network.get("provider:segmentation_id") or "—",
        network["status"]],
        [action("Delete", confirm=f"Delete network {network['name'] or network['id']}?", op="delete",
                id=network["id"], name=network["name"] or network["id"])])
        for network in listing]
    post = request.POST
    return page(request, "All networks", "admin-networks", error=error, tables=[
        table("admin-networks", ["Name", "Project", "Subnets", "Shared", "External", "Type", "Physical network",
                                 "Segment", "Status"], rows, "No networks in any project yet.", pages=pages)],
        forms=[form("admin-network-create", "Create a network", "create", [
            field("name", "Name", required=True, value=post.get("name", "")),
            field("project", "Project", "select", post.get("project", ""),
                  options=project_options(names, "(the admin project)")),
            field("external", "External (routers' gateways and floating IPs)", "checkbox",
                  checked(post, "external")),
            field("shared", "Shared with every project", "checkbox", checked(post, "shared")),
            field("network_type", "Provider network type", "select", post.get("network_type", "flat"),
                  options=[(kind, kind) for kind in NETWORK_TYPES]),
            field("physical_network", "Physical network (flat)", value=post.get("physical_network", ""),
                  placeholder="public"),
            field("segmentation_id", "Segmentation ID (VXLAN VNI, optional)", value=post.get("segmentation_id", "")),
            field("cidr", "Subnet CIDR (optional)", value=post.get("cidr", ""), placeholder="172.24.4.0/24"),
            field("gateway", "Gateway (optional)", value=post.get("gateway", ""), placeholder="172.24.4.1"),
        ], help_text="A flat network sits on one of the nodes' physical networks (STRATUS_PHYSICAL_NETWORKS); "
                     "a VXLAN network gets a VNI. An external network's subnet holds routers' gateways and "
                     "floating IPs (no DHCP on it).")])


@admin_panel
def volumes(request):
    root = volume_root(request)
    error = ""
    if request.method == "POST":
        done, error = submit(request, {"delete": deleting(request, "volume", f"{root}/volumes")})
        if done:
            return done
    names = project_names(request)
    listing, pages = paged(request, f"{root}/volumes/detail", "volumes", all_tenants="1")
    rows = []
    for volume in listing:
        project = volume.get("os-vol-tenant-attr:tenant_id", "")
        attached = ", ".join(attachment.get("server_id", "") for attachment in volume.get("attachments") or [])
        rows.append(row(volume["id"], volume["name"] or volume["id"], [
            volume["name"] or volume["id"], names.get(project, project), volume.get("os-vol-host-attr:host") or "—",
            volume["status"], f"{volume['size']} GB", volume.get("volume_type") or "", attached or "—"],
            [action("Delete", confirm=f"Delete volume {volume['name'] or volume['id']}?", op="delete",
                    id=volume["id"], name=volume["name"] or volume["id"])]))
    return page(request, "All volumes", "admin-volumes", error=error, tables=[
        table("admin-volumes", ["Name", "Project", "Host", "Status", "Size", "Type", "Attached to"], rows,
              "No volumes in any project yet.", pages=pages)],
        links=[link("Volume types", reverse("dashboard:admin_volume_types"))])


@admin_panel
def volume_types(request):
    root = volume_root(request)
    error = ""
    if request.method == "POST":
        def create(post):
            volume_type = {"name": post.get("name", "").strip(), "description": post.get("description", ""),
                           "os-volume-type-access:is_public": not checked(post, "private")}
            return f"Created volume type {volume_type['name']}.", [
                ("type", lambda: request.api.post(f"{root}/types", {"volume_type": volume_type}))]

        def set_spec(post):
            key = post.get("key", "").strip()
            return f"Set {key}.", [("extra spec", lambda: request.api.post(
                f"{root}/types/{post.get('type_id', '')}/extra_specs", {"extra_specs": {key: post.get("value", "")}}))]

        def unset_spec(post):
            key = post.get("key", "").strip()
            return f"Removed {key}.", [("extra spec", lambda: request.api.delete(
                f"{root}/types/{post.get('type_id', '')}/extra_specs/{key}"))]

        done, error = submit(request, {"create": create, "delete": deleting(request, "volume type", f"{root}/types"),
                                       "set": set_spec, "unset": unset_spec})
        if done:
            return done
    listing, pages = paged(request, f"{root}/types", "volume_types")
    rows = []
    for volume_type in listing:
        specs = volume_type.get("extra_specs") or {}
        rows.append(row(volume_type["id"], volume_type["name"], [
            volume_type["name"], volume_type.get("description") or "",
            "yes" if volume_type.get("is_public", True) else "no",
            ", ".join(f"{key}={value}" for key, value in sorted(specs.items())) or "—"],
            [action("Delete", confirm=f"Delete volume type {volume_type['name']}?", op="delete",
                    id=volume_type["id"], name=volume_type["name"])]))
    post = request.POST
    choices = [(volume_type["id"], volume_type["name"]) for volume_type in listing]
    forms = [form("volume-type-create", "Create a volume type", "create", [
        field("name", "Name", required=True, value=post.get("name", "") if post.get("op") == "create" else ""),
        field("description", "Description", value=post.get("description", "") if post.get("op") == "create" else ""),
        field("private", "Private", "checkbox", checked(post, "private"))])]
    if choices:
        forms += [
            form("volume-type-spec-set", "Set an extra spec", "set", [
                field("type_id", "Volume type", "select", post.get("type_id", ""), options=choices),
                field("key", "Key", required=True, placeholder="volume_backend_name"),
                field("value", "Value")], "Set"),
            form("volume-type-spec-unset", "Remove an extra spec", "unset", [
                field("type_id", "Volume type", "select", post.get("type_id", ""), options=choices),
                field("key", "Key", required=True)], "Remove")]
    return page(request, "Volume types", "admin-volume-types", error=error, tables=[
        table("volume-types", ["Name", "Description", "Public", "Extra specs"], rows,
              "No volume types yet — create one below.", pages=pages)], forms=forms,
        links=[link("All volumes", reverse("dashboard:admin_volumes"))])
