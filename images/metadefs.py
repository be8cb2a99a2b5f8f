"""Metadata definitions (Glance's metadefs): the checks every definition
goes through before it is stored, as Glance's JSON schemas make them, so a
bad one is a 400 naming its field (a property's `properties.cpu.minimum`)
and a namespace created with its contents is checked whole before any row
is written."""
import math
import re

from cloud.errors import BadRequest, Conflict, Forbidden
from images.models import METADEF_NAME_LENGTH, METADEF_VISIBILITIES

PROPERTY_TYPES = ("array", "boolean", "integer", "number", "object", "string")
# Attributes Stratus writes; a client naming one is refused with 403, as Glance.
READ_ONLY = ("self", "schema", "created_at", "updated_at")


def invalid(field, message):
    return BadRequest(f"Invalid input for field '{field}': {message}")


def out_of_range(value, path):
    """The path of the first number no column can hold (1e400 parses as
    infinity), None when there is none."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in children:
        found = out_of_range(item, f"{path}[{key}]" if isinstance(key, int) else
                             f"{path}.{key}" if path != "body" else str(key))
        if found:
            return found
    return None


def check_object_body(body, field="body"):
    if not isinstance(body, dict):
        raise invalid(field, "must be a JSON object.")
    found = out_of_range(body, field)
    if found:
        raise invalid(found, "a number out of range.")
    for key in READ_ONLY:
        if key in body:
            raise Forbidden(f"Attribute '{key}' is read-only.")
    return body


def check_keys(body, allowed, field):
    for key in body:
        if key not in allowed:
            prefix = f"{field}." if field != "body" else ""
            raise invalid(f"{prefix}{key}", "is not an attribute of this resource.")


def name(value, field, max_length=METADEF_NAME_LENGTH):
    """A name: 1 to 80 characters, not only blanks, and without `/` (it is
    a path segment in every URL that names it)."""
    if not isinstance(value, str) or not value.strip():
        raise invalid(field, f"{value!r} is not a non-empty string.")
    if "/" in value:
        raise invalid(field, f"{value!r} contains '/'.")
    if len(value) > max_length:
        raise invalid(field, f"longer than {max_length} characters.")
    return value


def text(value, field, max_length=None, nullable=True):
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise invalid(field, f"{value!r} is not a string.")
    if max_length is not None and len(value) > max_length:
        raise invalid(field, f"longer than {max_length} characters.")
    return value


def boolean(value, field):
    if not isinstance(value, bool):
        raise invalid(field, f"{value!r} is not a boolean.")
    return value


def number(value, field):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(field, f"{value!r} is not a number.")
    return value


def count(value, field):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid(field, f"{value!r} is not a whole number of 0 or more.")
    return value


def string_list(value, field, unique=False):
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid(field, f"{value!r} is not a list of strings.")
    if unique and len(set(value)) != len(value):
        raise invalid(field, "has the same string more than once.")
    return value


def property_type(value, field):
    if value is not None and value not in PROPERTY_TYPES:
        raise invalid(field, f"{value!r} is not one of {', '.join(PROPERTY_TYPES)}.")
    return value


def pattern(value, field):
    text(value, field, nullable=False)
    try:
        re.compile(value)
    except re.error as error:
        raise invalid(field, f"{value!r} is not a regular expression ({error}).")
    return value


def enum(value, field):
    if not isinstance(value, list):
        raise invalid(field, f"{value!r} is not a list.")
    return value


def items(value, field):
    if not isinstance(value, dict):
        raise invalid(field, f"{value!r} is not an object.")
    check_keys(value, ("type", "enum"), field)
    if "type" in value:
        property_type(value["type"], f"{field}.type")
    if "enum" in value:
        enum(value["enum"], f"{field}.enum")
    return value


# A property definition's attributes (Glance's `property` definition) and
# the check of each.
PROPERTY_ATTRIBUTES = {
    "name": lambda value, field: name(value, field),
    "title": lambda value, field: text(value, field, nullable=False),
    "description": lambda value, field: text(value, field, nullable=False),
    "operators": string_list,
    "type": property_type,
    "required": lambda value, field: string_list(value, field, unique=True),
    "minimum": number,
    "maximum": number,
    "maxLength": count,
    "minLength": count,
    "pattern": pattern,
    "enum": enum,
    "readonly": boolean,
    "default": lambda value, field: value,
    "items": items,
    "maxItems": count,
    "minItems": count,
    "uniqueItems": boolean,
    "additionalItems": boolean,
}
BOUNDS = (("minimum", "maximum"), ("minLength", "maxLength"), ("minItems", "maxItems"))


def check_property(body, field="body", named=False):
    """A property definition: `title` and `type` required (and `name` when
    it stands alone), each attribute of its kind, lower bounds not above
    upper ones. Returns the definition without its name."""
    check_object_body(body, field)
    check_keys(body, PROPERTY_ATTRIBUTES, field)
    prefix = f"{field}." if field != "body" else ""
    for required in (("name", "title", "type") if named else ("title", "type")):
        if required not in body:
            raise invalid(f"{prefix}{required}", "is required.")
    for key, value in body.items():
        PROPERTY_ATTRIBUTES[key](value, f"{prefix}{key}")
    for low, high in BOUNDS:
        if low in body and high in body and body[low] > body[high]:
            raise invalid(f"{prefix}{low}", f"{body[low]!r} is above {high} {body[high]!r}.")
    return {key: value for key, value in body.items() if key != "name"}


def check_properties(value, field):
    """A map of property definitions by name."""
    if not isinstance(value, dict):
        raise invalid(field, f"{value!r} is not an object of property definitions by name.")
    return {name(key, f"{field}.{key}"): check_property(definition, f"{field}.{key}")
            for key, definition in value.items()}


def check_object(body, field="body"):
    """An object: its name, description, required names and properties."""
    check_object_body(body, field)
    check_keys(body, ("name", "description", "required", "properties"), field)
    prefix = f"{field}." if field != "body" else ""
    if "name" not in body:
        raise invalid(f"{prefix}name", "is required.")
    return {
        "name": name(body["name"], f"{prefix}name"),
        "description": text(body.get("description"), f"{prefix}description"),
        "required": (string_list(body["required"], f"{prefix}required", unique=True)
                     if body.get("required") is not None else None),
        "properties": (check_properties(body["properties"], f"{prefix}properties")
                       if body.get("properties") is not None else {}),
    }


def check_tag(body, field="body"):
    check_object_body(body, field)
    check_keys(body, ("name",), field)
    prefix = f"{field}." if field != "body" else ""
    if "name" not in body:
        raise invalid(f"{prefix}name", "is required.")
    return name(body["name"], f"{prefix}name")


def check_tags(value, field="tags"):
    """Tag names of a list of {"name": ...}; a name twice is Glance's 409
    (the second row would be a duplicate)."""
    if not isinstance(value, list):
        raise invalid(field, f"{value!r} is not a list of tags.")
    names = [check_tag(tag, f"{field}[{index}]") for index, tag in enumerate(value)]
    if len(set(names)) != len(names):
        raise Conflict(f"Invalid input for field '{field}': names the same tag more than once.")
    return names


def check_association(body, field="body"):
    check_object_body(body, field)
    check_keys(body, ("name", "prefix", "properties_target"), field)
    prefix = f"{field}." if field != "body" else ""
    if "name" not in body:
        raise invalid(f"{prefix}name", "is required.")
    return {
        "name": name(body["name"], f"{prefix}name"),
        "prefix": text(body.get("prefix"), f"{prefix}prefix", METADEF_NAME_LENGTH),
        "properties_target": text(body.get("properties_target"), f"{prefix}properties_target",
                                  METADEF_NAME_LENGTH),
    }


NAMESPACE_ATTRIBUTES = ("namespace", "display_name", "description", "visibility", "protected", "owner",
                        "resource_type_associations", "properties", "objects", "tags")


def check_namespace(body):
    """A namespace (create or update) with the contents it may carry."""
    check_object_body(body)
    check_keys(body, NAMESPACE_ATTRIBUTES, "body")
    if "namespace" not in body:
        raise invalid("namespace", "is required.")
    visibility = body.get("visibility")
    if visibility is not None and visibility not in METADEF_VISIBILITIES:
        raise invalid("visibility", f"{visibility!r} is not one of {', '.join(METADEF_VISIBILITIES)}.")
    associations = body.get("resource_type_associations") or []
    if not isinstance(associations, list):
        raise invalid("resource_type_associations", "is not a list.")
    objects = body.get("objects") or []
    if not isinstance(objects, list):
        raise invalid("objects", "is not a list.")
    checked = {
        "namespace": name(body["namespace"], "namespace"),
        "display_name": text(body.get("display_name"), "display_name", METADEF_NAME_LENGTH),
        "description": text(body.get("description"), "description", 500),
        "visibility": visibility or "private",
        "protected": boolean(body["protected"], "protected") if body.get("protected") is not None else False,
        "owner": text(body.get("owner"), "owner", 255),
        "resource_type_associations": [check_association(item, f"resource_type_associations[{index}]")
                                       for index, item in enumerate(associations)],
        "properties": check_properties(body.get("properties") or {}, "properties"),
        "objects": [check_object(item, f"objects[{index}]") for index, item in enumerate(objects)],
        "tags": check_tags(body.get("tags") or []),
    }
    for field, key in (("objects", "name"), ("resource_type_associations", "name")):
        names = [item[key] for item in checked[field]]
        if len(set(names)) != len(names):
            raise Conflict(f"Invalid input for field '{field}': names the same {key} more than once.")
    return checked
