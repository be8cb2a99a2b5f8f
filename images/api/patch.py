"""JSON patch of an image (`application/openstack-images-v2.1-json-patch`,
`{"op": "replace", "path": "/name"}`, or the older v2.0 form Glance still
takes, `{"replace": "/name"}`): add, remove and replace of base attributes, custom properties and the tags
list (as a whole: `/tags`; one tag at a time is PUT/DELETE .../tags/<tag>),
with Glance's answers (403 for read-only attributes, 409 for a missing
property). All operations are checked before any is saved."""
from django.utils import timezone

from cloud.errors import BadRequest, Conflict, Forbidden
from images.api.serializers import WRITABLE, check_name, check_value
from images.models import QUEUED

MEDIA_TYPES = ("application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch")
OPERATIONS = ("add", "remove", "replace")


def _name(path):
    """The one attribute a JSON pointer names (/name, /os_distro)."""
    if not isinstance(path, str) or not path.startswith("/") or path == "/" or "/" in path[1:]:
        raise BadRequest(f"Invalid JSON pointer for this resource: {path!r}.")
    return path[1:].replace("~1", "/").replace("~0", "~")


def _v20_operation(operation):
    """A v2.0 operation ({"replace": "/name", "value": ...}) in the v2.1 form."""
    named = [op for op in OPERATIONS if op in operation]
    if len(named) != 1:
        raise BadRequest('Invalid operation: an operation object must contain exactly one member named "add", '
                         '"remove" or "replace".')
    converted = {"op": named[0], "path": operation[named[0]]}
    if "value" in operation:
        converted["value"] = operation["value"]
    return converted


def parse(body, media_type=MEDIA_TYPES[0]):
    """[(op, path, attribute name, value)] of a patch body."""
    if not isinstance(body, list):
        raise BadRequest("Invalid input: a JSON patch is a JSON array of operation objects.")
    changes = []
    for index, operation in enumerate(body):
        if not isinstance(operation, dict):
            raise BadRequest(f"Invalid input for operation {index}: not a JSON object.")
        if media_type == MEDIA_TYPES[1]:
            operation = _v20_operation(operation)
        path = operation.get("path")
        name = _name(path)
        op = operation.get("op")
        if op not in OPERATIONS:
            raise BadRequest(f"Invalid operation {op!r} for path '{path}': op must be one of "
                             f"{', '.join(OPERATIONS)}.")
        if op != "remove" and "value" not in operation:
            raise BadRequest(f"Invalid operation '{op}' for path '{path}': a value is required.")
        changes.append((op, path, name, operation.get("value")))
    return changes


class ImageState:
    """A working copy of what a patch may change."""

    def __init__(self, image):
        self.image = image
        self.attributes = {name: getattr(image, name) for name in WRITABLE if name != "tags"}
        self.tags = sorted(tag.value for tag in image.tags.all())
        self.properties = dict(image.properties)

    def apply(self, changes, credentials):
        for op, path, name, value in changes:
            check_name(name, path)
            if name in WRITABLE:
                self._apply_attribute(op, path, name, value, credentials)
            else:
                self._apply_property(op, path, name, value)

    def _apply_attribute(self, op, path, name, value, credentials):
        if op == "remove":
            raise Forbidden(f"Property {name} may not be removed.")
        value = check_value(name, value, path)
        if name == "tags":
            self.tags = value
            return
        if name in ("disk_format", "container_format") and self.image.status != QUEUED \
                and value != self.attributes[name]:
            raise Forbidden(f"Attribute {name} can be only replaced for a queued image.")
        if name == "owner" and not credentials.is_admin and value != self.attributes["owner"]:
            raise Forbidden("Only an administrator may change the owner of an image.")
        if name == "visibility" and value == "public" and not credentials.is_admin \
                and self.attributes["visibility"] != "public":
            raise Forbidden("You are not authorized to publicize images.")
        self.attributes[name] = value

    def _apply_property(self, op, path, name, value):
        if op == "add":
            self.properties[name] = check_value(name, value, path)
        elif name not in self.properties:
            raise Conflict(f"Property {name} does not exist.")
        elif op == "replace":
            self.properties[name] = check_value(name, value, path)
        else:
            del self.properties[name]

    def save(self):
        """Writes the copy back (the caller holds the row locked)."""
        image = self.image
        for name, value in self.attributes.items():
            setattr(image, name, value)
        image.properties = self.properties
        image.updated_at = timezone.now()
        image.save()
        wanted = set(self.tags)
        current = {tag.value: tag for tag in image.tags.all()}
        image.tags.filter(value__in=set(current) - wanted).delete()
        image.tags.model.objects.bulk_create(
            [image.tags.model(image=image, value=value) for value in sorted(wanted - set(current))])

