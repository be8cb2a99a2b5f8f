"""JSON schemas of images, members and tasks (GET /v2/schemas/...), which
clients such as glanceclient read to know the attributes."""
from images.api.serializers import READ_ONLY
from images.importing import TASK_TYPES
from images.models import CONTAINER_FORMATS, DISK_FORMATS, MEMBER_STATUSES, TASK_STATUSES, VISIBILITIES


def _nullable(kind, **extra):
    return {"type": [kind, "null"], **extra}


IMAGE_PROPERTIES = {
    "id": {"type": "string", "description": "An identifier for the image",
           "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"},
    "name": _nullable("string", maxLength=255, description="Descriptive name for the image"),
    "status": {"type": "string", "enum": ["queued", "saving", "uploading", "importing", "active", "killed", "deleted", "deactivated"],
               "description": "Status of the image"},
    "visibility": {"type": "string", "enum": list(VISIBILITIES), "description": "Scope of image accessibility"},
    "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
    "os_hidden": {"type": "boolean", "description": "If true, image will not appear in default image list response."},
    "checksum": _nullable("string", maxLength=32, description="md5 hash of image contents."),
    "os_hash_algo": _nullable("string", maxLength=64, description="Algorithm of os_hash_value"),
    "os_hash_value": _nullable("string", maxLength=128, description="Hexdigest of the image contents"),
    "owner": _nullable("string", maxLength=255, description="Owner of the image"),
    "size": _nullable("integer", description="Size of image file in bytes"),
    "virtual_size": _nullable("integer", description="Virtual size of image in bytes"),
    "container_format": {"type": ["null", "string"], "enum": [None, *CONTAINER_FORMATS],
                         "description": "Format of the container"},
    "disk_format": {"type": ["null", "string"], "enum": [None, *DISK_FORMATS], "description": "Format of the disk"},
    "created_at": {"type": "string", "format": "date-time", "description": "Date and time of image registration"},
    "updated_at": {"type": "string", "format": "date-time", "description": "Date and time of the last image modification"},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 255},
             "description": "List of strings related to the image"},
    "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
    "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
    "stores": {"type": "string", "description": "Store in which image data resides. Only present when the image is active."},
    "self": {"type": "string", "description": "An image self url"},
    "file": {"type": "string", "description": "An image file url"},
    "schema": {"type": "string", "description": "An image schema url"},
}
for _name in READ_ONLY + ("id", "self", "file", "schema"):
    if _name in IMAGE_PROPERTIES:
        IMAGE_PROPERTIES[_name]["readOnly"] = True

IMAGE_SCHEMA = {
    "name": "image",
    "properties": IMAGE_PROPERTIES,
    "additionalProperties": {"type": "string"},
    "links": [
        {"rel": "self", "href": "{self}"},
        {"rel": "enclosure", "href": "{file}"},
        {"rel": "describedby", "href": "{schema}"},
    ],
}

IMAGES_SCHEMA = {
    "name": "images",
    "properties": {
        "images": {"type": "array", "items": IMAGE_SCHEMA},
        "schema": {"type": "string"},
        "first": {"type": "string"},
        "next": {"type": "string"},
    },
    "links": [
        {"rel": "first", "href": "{first}"},
        {"rel": "next", "href": "{next}"},
        {"rel": "describedby", "href": "{schema}"},
    ],
}

MEMBER_SCHEMA = {
    "name": "member",
    "properties": {
        "created_at": {"type": "string", "description": "Date and time of image member creation"},
        "image_id": {"type": "string", "description": "An identifier for the image"},
        "member_id": {"type": "string", "description": "An identifier for the image member (project id)"},
        "status": {"type": "string", "enum": list(MEMBER_STATUSES), "description": "The status of this image member"},
        "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
        "schema": {"type": "string", "readOnly": True},
    },
}

MEMBERS_SCHEMA = {
    "name": "members",
    "properties": {"members": {"type": "array", "items": MEMBER_SCHEMA}, "schema": {"type": "string"}},
    "links": [{"rel": "describedby", "href": "{schema}"}],
}

_UUID = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
TASK_PROPERTIES = {
    "id": {"type": "string", "pattern": _UUID, "description": "An identifier for the task"},
    "type": {"type": "string", "enum": list(TASK_TYPES), "description": "The type of task represented by this content"},
    "status": {"type": "string", "enum": list(TASK_STATUSES), "description": "The current status of this task"},
    "input": {"type": ["null", "object"], "description": "The parameters required by task, JSON blob"},
    "result": {"type": ["null", "object"], "description": "The result of current task, JSON blob"},
    "owner": {"type": "string", "description": "An identifier for the owner of this task"},
    "message": {"type": "string", "description": "Human-readable informative message only included when "
                                                 "appropriate (usually on failure)"},
    "image_id": {"type": "string", "readOnly": True, "description": "Image associated with the task"},
    "request_id": {"type": "string", "readOnly": True, "description": "Human-readable informative request-id"},
    "user_id": {"type": "string", "readOnly": True, "description": "User associated with the task"},
    "expires_at": {"type": ["null", "string"], "description": "Datetime when this resource would be subject to "
                                                               "removal"},
    "created_at": {"type": "string", "description": "Datetime when this resource was created"},
    "updated_at": {"type": "string", "description": "Datetime when this resource was updated"},
    "self": {"type": "string"},
    "schema": {"type": "string"},
}

TASK_SCHEMA = {
    "name": "task",
    "properties": TASK_PROPERTIES,
    "links": [{"rel": "self", "href": "{self}"}, {"rel": "describedby", "href": "{schema}"}],
}

TASKS_SCHEMA = {
    "name": "tasks",
    "properties": {
        "tasks": {"type": "array", "items": {"name": "task", "properties": {
            name: value for name, value in TASK_PROPERTIES.items() if name not in ("input", "result", "message")},
            "links": TASK_SCHEMA["links"]}},
        "schema": {"type": "string"},
        "first": {"type": "string"},
        "next": {"type": "string"},
    },
    "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
              {"rel": "describedby", "href": "{schema}"}],
}

SCHEMAS = {"image": IMAGE_SCHEMA, "images": IMAGES_SCHEMA, "member": MEMBER_SCHEMA, "members": MEMBERS_SCHEMA,
           "task": TASK_SCHEMA, "tasks": TASKS_SCHEMA}
