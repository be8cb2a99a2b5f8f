"""Images on the wire, as Glance shows them: one flat object where custom
properties sit beside the base attributes; and the checks every write of an
attribute goes through (create and JSON patch alike)."""
import uuid

from cloud.errors import BadRequest, Forbidden
from images.models import CONTAINER_FORMATS, DISK_FORMATS, VISIBILITIES

# Attributes only Stratus writes; a client naming one is refused (403, as Glance).
READ_ONLY = ("status", "checksum", "os_hash_algo", "os_hash_value", "size", "virtual_size",
             "created_at", "updated_at", "direct_url", "stores")
RESERVED = ("self", "file", "schema", "location", "locations", "deleted", "deleted_at")
RESERVED_PREFIX = "os_glance"
MAX_PROPERTY_LENGTH = 65535


def timestamp(value):
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def image_view(image):
    """The image as Glance returns it. Reads tags and locations from
    prefetched relations (no query per image in a list)."""
    data = dict(image.properties)
    data.update({
        "id": image.id, "name": image.name, "status": image.status, "visibility": image.visibility,
        "protected": image.protected, "os_hidden": image.os_hidden, "checksum": image.checksum,
        "os_hash_algo": image.os_hash_algo, "os_hash_value": image.os_hash_value, "owner": image.owner,
        "size": image.size, "virtual_size": image.virtual_size, "min_ram": image.min_ram,
        "min_disk": image.min_disk, "disk_format": image.disk_format, "container_format": image.container_format,
        "created_at": timestamp(image.created_at), "updated_at": timestamp(image.updated_at),
        "tags": sorted(tag.value for tag in image.tags.all()),
        "self": f"/v2/images/{image.id}", "file": f"/v2/images/{image.id}/file", "schema": "/v2/schemas/image",
    })
    store_ids = sorted(location.store for location in image.locations.all())
    if store_ids:
        data["stores"] = ",".join(store_ids)
    return data


def member_view(member):
    return {"image_id": member.image_id, "member_id": member.member, "status": member.status,
            "created_at": timestamp(member.created_at), "updated_at": timestamp(member.updated_at),
            "schema": "/v2/schemas/member"}


def task_view(task, listed=False):
    """A task as Glance's tasks API shows it; in a list without its input,
    result and message."""
    view = {"id": task.id, "type": task.type, "status": task.status, "owner": task.owner,
            "image_id": task.image_id, "request_id": task.request_id, "user_id": task.user_id,
            "created_at": timestamp(task.created_at), "updated_at": timestamp(task.updated_at),
            "expires_at": timestamp(task.expires_at), "self": f"/v2/tasks/{task.id}", "schema": "/v2/schemas/task"}
    if not listed:
        view.update(input=task.input, result=task.result, message=task.message)
    return view


def invalid(field, message):
    return BadRequest(f"Invalid input for field '{field}': {message}")


def _string(value, field, max_length=255, nullable=False):
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise invalid(field, f"{value!r} is not a string.")
    if len(value) > max_length:
        raise invalid(field, f"longer than {max_length} characters.")
    return value


def _choice(choices):
    def check(value, field):
        if value is None:
            return None
        if value not in choices:
            raise invalid(field, f"{value!r} is not one of {', '.join(choices)}.")
        return value
    return check


def _boolean(value, field):
    if not isinstance(value, bool):
        raise invalid(field, f"{value!r} is not a boolean.")
    return value


def _count(value, field):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 2**31 - 1:
        raise invalid(field, f"{value!r} is not a whole number from 0 to {2**31 - 1}.")
    return value


def _tags(value, field):
    if not isinstance(value, list):
        raise invalid(field, f"{value!r} is not a list of strings.")
    return sorted({_string(tag, field) for tag in value})


# Base attributes a client may write, and the check of each value.
WRITABLE = {
    "name": lambda value, field: _string(value, field, nullable=True),
    "visibility": lambda value, field: _choice(VISIBILITIES)(value, field) or _missing(field),
    "protected": _boolean,
    "os_hidden": _boolean,
    "min_disk": _count,
    "min_ram": _count,
    "disk_format": _choice(DISK_FORMATS),
    "container_format": _choice(CONTAINER_FORMATS),
    "tags": _tags,
    "owner": lambda value, field: _string(value, field, max_length=64, nullable=True),
}


def _missing(field):
    raise invalid(field, "may not be null.")


def check_name(name, field):
    """A property name a client may write: 403 for read-only or reserved
    ones, as Glance answers."""
    if name in READ_ONLY or name == "id":
        raise Forbidden(f"Attribute '{name}' is read-only.")
    if name in RESERVED or name.startswith(RESERVED_PREFIX):
        raise Forbidden(f"Attribute '{name}' is reserved.")
    if not name or len(name) > 255:
        raise invalid(field, "property names are 1 to 255 characters long.")


def check_value(name, value, field):
    """The checked value of attribute or custom property `name`."""
    if name in WRITABLE:
        return WRITABLE[name](value, field)
    return _string(value, field, max_length=MAX_PROPERTY_LENGTH)


def check_new_image(body):
    """(base attributes, custom properties, tags) of a create request."""
    if not isinstance(body, dict):
        raise BadRequest("Invalid input: the request body must be a JSON object of image attributes.")
    attributes, properties, tags = {}, {}, None
    for name, value in body.items():
        if name == "id":
            try:
                attributes["id"] = str(uuid.UUID(str(value)))
            except ValueError:
                raise invalid("id", f"{value!r} is not a UUID.")
            continue
        check_name(name, name)
        value = check_value(name, value, name)
        if name == "tags":
            tags = value
        elif name in WRITABLE:
            attributes[name] = value
        else:
            properties[name] = value
    return attributes, properties, tags or []
