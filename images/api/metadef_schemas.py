"""JSON schemas of the metadata definitions (GET /v2/schemas/metadefs/...),
in Glance's shapes: what clients (glanceclient, Horizon) read to know the
attributes. The checks in images.metadefs enforce the same rules."""
from images.metadefs import PROPERTY_TYPES
from images.models import METADEF_NAME_LENGTH, METADEF_VISIBILITIES

TYPES = [*PROPERTY_TYPES, None]
STRING_ARRAY = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
POSITIVE_INTEGER = {"type": "integer", "minimum": 0}
POSITIVE_INTEGER_DEFAULT_0 = {"allOf": [{"$ref": "#/definitions/positiveInteger"}, {"default": 0}]}


def timestamp(what):
    return {"type": "string", "readOnly": True, "format": "date-time",
            "description": f"Date and time of {what} (READ-ONLY)"}


PROPERTY_ATTRIBUTES = {
    "name": {"type": "string", "maxLength": METADEF_NAME_LENGTH},
    "title": {"type": "string"},
    "description": {"type": "string"},
    "operators": {"type": "array", "items": {"type": "string"}},
    "type": {"type": "string", "enum": TYPES},
    "required": {"$ref": "#/definitions/stringArray"},
    "minimum": {"type": "number"},
    "maximum": {"type": "number"},
    "maxLength": {"$ref": "#/definitions/positiveInteger"},
    "minLength": {"$ref": "#/definitions/positiveIntegerDefault0"},
    "pattern": {"type": "string", "format": "regex"},
    "enum": {"type": "array"},
    "readonly": {"type": "boolean"},
    "default": {},
    "items": {"type": "object", "properties": {"type": {"type": "string", "enum": TYPES},
                                               "enum": {"type": "array"}}},
    "maxItems": {"$ref": "#/definitions/positiveInteger"},
    "minItems": {"$ref": "#/definitions/positiveIntegerDefault0"},
    "uniqueItems": {"type": "boolean", "default": False},
    "additionalItems": {"type": "boolean"},
}

DEFINITIONS = {
    "positiveInteger": POSITIVE_INTEGER,
    "positiveIntegerDefault0": POSITIVE_INTEGER_DEFAULT_0,
    "stringArray": STRING_ARRAY,
    "property": {"type": "object", "additionalProperties": {
        "type": "object", "required": ["title", "type"], "properties": PROPERTY_ATTRIBUTES}},
}

ASSOCIATION_PROPERTIES = {
    "name": {"type": "string", "maxLength": METADEF_NAME_LENGTH,
             "description": "Resource type names should be aligned with Heat resource types whenever possible."},
    "prefix": {"type": "string", "maxLength": METADEF_NAME_LENGTH,
               "description": "Specifies the prefix to use for the given resource type."},
    "properties_target": {"type": "string", "maxLength": METADEF_NAME_LENGTH,
                          "description": "Where the properties go on the resource type."},
    "created_at": timestamp("resource type association"),
    "updated_at": timestamp("the last resource type association modification"),
}

OBJECT_PROPERTIES = {
    "name": {"type": "string", "maxLength": METADEF_NAME_LENGTH},
    "description": {"type": "string"},
    "required": {"$ref": "#/definitions/stringArray"},
    "properties": {"$ref": "#/definitions/property"},
    "schema": {"type": "string", "readOnly": True},
    "self": {"type": "string", "readOnly": True},
    "created_at": timestamp("object creation"),
    "updated_at": timestamp("the last object modification"),
}

TAG_PROPERTIES = {
    "name": {"type": "string", "maxLength": METADEF_NAME_LENGTH},
    "created_at": timestamp("tag creation"),
    "updated_at": timestamp("the last tag modification"),
}

NAMESPACE_PROPERTIES = {
    "namespace": {"type": "string", "maxLength": METADEF_NAME_LENGTH, "description": "The unique namespace text."},
    "display_name": {"type": "string", "maxLength": METADEF_NAME_LENGTH,
                     "description": "The user friendly name for the namespace. Used by UI if available."},
    "description": {"type": "string", "maxLength": 500,
                    "description": "Provides a user friendly description of the namespace."},
    "visibility": {"type": "string", "enum": list(METADEF_VISIBILITIES),
                   "description": "Scope of namespace accessibility."},
    "protected": {"type": "boolean", "description": "If true, namespace will not be deletable."},
    "owner": {"type": "string", "maxLength": 255, "description": "Owner of the namespace."},
    "created_at": timestamp("namespace creation"),
    "updated_at": timestamp("the last namespace modification"),
    "schema": {"type": "string", "readOnly": True},
    "self": {"type": "string", "readOnly": True},
    "resource_type_associations": {"type": "array", "items": {"type": "object", "properties": {
        "name": {"type": "string"}, "prefix": {"type": "string"}, "properties_target": {"type": "string"}}}},
    "properties": {"$ref": "#/definitions/property"},
    "objects": {"type": "array", "items": {"type": "object", "properties": {
        "name": {"type": "string"}, "description": {"type": "string"},
        "required": {"$ref": "#/definitions/stringArray"}, "properties": {"$ref": "#/definitions/property"}}}},
    "tags": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
}


def member(name, properties, required, definitions=None):
    schema = {"name": name, "properties": properties, "additionalProperties": False, "required": required}
    if definitions:
        schema["definitions"] = definitions
    return schema


def collection(name, key, item, links=True):
    schema = {"name": name, "properties": {key: {"type": "array", "items": item}, "first": {"type": "string"},
                                           "next": {"type": "string"}, "schema": {"type": "string"}}}
    if "definitions" in item:
        schema["definitions"] = item["definitions"]
    if links:
        schema["links"] = [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                           {"rel": "describedby", "href": "{schema}"}]
    return schema


NAMESPACE = member("namespace", NAMESPACE_PROPERTIES, ["namespace"], DEFINITIONS)
OBJECT = member("object", OBJECT_PROPERTIES, ["name"], DEFINITIONS)
PROPERTY = member("property", PROPERTY_ATTRIBUTES, ["name", "title", "type"],
                  {key: DEFINITIONS[key] for key in ("positiveInteger", "positiveIntegerDefault0", "stringArray")})
TAG = member("tag", TAG_PROPERTIES, ["name"])
ASSOCIATION = member("resource_type_association", ASSOCIATION_PROPERTIES, ["name"])

METADEF_SCHEMAS = {
    "namespace": NAMESPACE,
    "namespaces": collection("namespaces", "namespaces", NAMESPACE),
    "object": OBJECT,
    "objects": collection("objects", "objects", OBJECT),
    "property": PROPERTY,
    "properties": {"name": "properties", "properties": {
        "properties": {"$ref": "#/definitions/property"}, "schema": {"type": "string"}},
        "definitions": DEFINITIONS, "links": [{"rel": "describedby", "href": "{schema}"}]},
    "tag": TAG,
    "tags": collection("tags", "tags", TAG),
    "resource_type": ASSOCIATION,
    "resource_types": collection("resource_type_associations", "resource_type_associations", ASSOCIATION,
                                 links=False),
}
