"""The metadata service's one view: walks the OpenStack or EC2 tree of the
instance the request is for (compute.metadata.identify) along the path.
Answers are text as Nova's are: directories as lists of names, files as
themselves; errors as webob's plain-text pages."""
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from compute.metadata import content
from compute.metadata.identify import MetadataError, instance_of

ALLOWED_METHODS = ("GET", "HEAD")
REASONS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed"}


def _error(status, message):
    body = f"{status} {REASONS.get(status, 'Error')}\n\n{message}\n"
    return HttpResponse(body, status=status, content_type="text/plain; charset=UTF-8")


def _text(body, content_type="text/plain; charset=UTF-8"):
    return HttpResponse(body, content_type=content_type)


@csrf_exempt  # no session, no form: a 405 for what is not a read, not CSRF's page
def metadata(request, path=""):
    if request.method not in ALLOWED_METHODS:
        response = _error(405, f"The method {request.method} is not allowed for this resource.")
        response["Allow"] = ", ".join(ALLOWED_METHODS)
        return response
    parts = [part for part in path.split("/") if part]
    if not parts:
        return _text("\n".join(content.EC2_VERSIONS + (content.LATEST,)))
    if parts[0] == "openstack" and len(parts) == 1:
        return _text("\n".join(content.OPENSTACK_VERSIONS + (content.LATEST,)))
    known_version = (content.openstack_version_exists(parts[1]) if parts[0] == "openstack" and len(parts) > 1
                     else content.ec2_version_exists(parts[0]))
    if not known_version:
        return _error(404, "The resource could not be found.")
    try:
        instance = instance_of(request)
    except MetadataError as error:
        return _error(error.status, error.message)
    data = content.InstanceMetadata(instance)
    if parts[0] == "openstack":
        return _openstack(data, parts[1], parts[2:])
    return _ec2(data, parts[1:])


def _openstack(data, version, rest):
    files = data.openstack_files(version)
    if not rest:
        return _text("\n".join(name for name in content.OPENSTACK_FILES_SINCE if name in files))
    if len(rest) > 1 or rest[0] not in files:
        if rest == ["user_data"]:
            return _error(404, "No user data was given for this instance.")
        return _error(404, "The resource could not be found.")
    if rest[0].endswith(".json"):
        return _text(files[rest[0]], "application/json")
    return _text(files[rest[0]])


def _ec2(data, rest):
    node = data.ec2_version()
    for name in rest:
        if not isinstance(node, dict) or name == "_name" or name not in node:
            if rest == ["user-data"]:
                return _error(404, "No user data was given for this instance.")
            return _error(404, "The resource could not be found.")
        node = node[name]
    return _text(content.ec2_listing(node))
