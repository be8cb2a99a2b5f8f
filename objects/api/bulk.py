"""Bulk delete (Swift's bulk middleware): POST /v1/AUTH_x?bulk-delete with
one URL-encoded `/container/object` or `/container` per line; the answer
(200, in the Accept format) counts what was deleted and lists what was not."""
import json
from urllib.parse import unquote

from django.http import HttpResponse

from objects import data
from objects.api.access import OWNER, WRITE
from objects.api.errors import SwiftError
from objects.models import Container, Object


def bulk_delete(controller):
    request = controller.request
    if controller.credentials is None:
        raise SwiftError(401)
    raw = request.read(data.BULK_MAX_DELETES_PER_REQUEST * (data.MAX_OBJECT_NAME_LENGTH * 3 + 800))
    try:
        lines = raw.decode().splitlines()
    except UnicodeDecodeError:
        raise SwiftError(400, "Invalid UTF-8 in the list of names")
    paths = [line.strip() for line in lines if line.strip()]
    if len(paths) > data.BULK_MAX_DELETES_PER_REQUEST:
        raise SwiftError(413, f"Maximum Bulk Deletes: {data.BULK_MAX_DELETES_PER_REQUEST} per request")
    return delete_paths(controller, [unquote(path) for path in paths])


def delete_paths(controller, paths):
    deleted, not_found, errors = 0, 0, []
    for path in paths:
        container_name, _, name = path.lstrip("/").partition("/")
        container = Container.objects.filter(account_id=controller.project_id, name=container_name).first()
        try:
            controller.authorize(WRITE if name else OWNER, container)
        except SwiftError as error:
            errors.append([path, "401 Unauthorized" if error.status == 401 else "403 Forbidden"])
            continue
        if container is None:
            not_found += 1
        elif name:
            row = Object.objects.filter(container=container, name=name).first()
            if row is not None and data.delete_object(container, name):
                deleted += 1
            else:
                not_found += 1
        elif data.delete_container(container):
            deleted += 1
        else:
            errors.append([path, "409 Conflict"])
    status = "400 Bad Request" if errors else "200 OK"
    result = {"Number Deleted": deleted, "Number Not Found": not_found, "Response Status": status,
              "Response Body": "", "Errors": errors}
    if "json" in controller.request.headers.get("Accept", ""):
        body, content_type = json.dumps(result), "application/json; charset=utf-8"
    else:
        lines = [f"{key}: {value}" for key, value in result.items() if key != "Errors"]
        lines.append("Errors:")
        lines += [f"{path}, {why}" for path, why in errors]
        body, content_type = "\n".join(lines) + "\n", "text/plain; charset=utf-8"
    return HttpResponse(body, content_type=content_type)
