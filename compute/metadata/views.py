"""The metadata service's one view: walks the OpenStack or EC2 tree of the
instance the request is for (compute.metadata.identify) along the path.
Answers are text as Nova's are: directories as lists of names, files as
themselves; errors as webob's plain-text pages."""
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from compute.metadata import content
from compute.metadata.identify import MetadataError, instance_of
from compute.models import Instance

ALLOWED_METHODS = ("GET", "HEAD")
REASONS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict"}


def _error(status, message):
    body = f"{status} {REASONS.get(status, 'Error')}\n\n{message}\n"
    return HttpResponse(body, status=status, content_type="text/plain; charset=UTF-8")


def _text(body, content_type="text/plain; charset=UTF-8"):
    return HttpResponse(body, content_type=content_type)


@csrf_exempt  # no session, no form: a 405 for what is not a read, not CSRF's page
def metadata(request, path=""):
    parts = [part for part in path.split("/") if part]
    posts_password = request.method == "POST" and len(parts) == 3 and parts[0] == "openstack" and \
        parts[2] == "password"
    if request.method not in ALLOWED_METHODS and not posts_password:
        response = _error(405, f"The method {request.method} is not allowed for this resource.")
        response["Allow"] = ", ".join(ALLOWED_METHODS)
        return response
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
    if posts_password:
        return _set_password(instance, parts[1], request.body)
    data = content.InstanceMetadata(instance)
    if parts[0] == "openstack":
        return _openstack(data, parts[1], parts[2:])
    return _ec2(data, parts[1:])


def _set_password(instance, version, body):
    """The guest posts its encrypted password once, as to Nova's metadata
    service: a second post is a 409 until the owner clears it."""
    if not content.has_password_file(version):
        return _error(404, "The resource could not be found.")
    if len(body) > content.PASSWORD_MAX_BYTES:
        return _error(400, f"The password is longer than {content.PASSWORD_MAX_BYTES} bytes.")
    try:
        password = body.decode()
    except UnicodeDecodeError:
        return _error(400, "The password is not text.")
    if not Instance.objects.filter(pk=instance.pk, guest_password="").update(guest_password=password):
        return _error(409, "The password was set already.")
    return _text("")


def _openstack(data, version, rest):
    files = data.openstack_files(version)
    if content.has_password_file(version):
        files["password"] = data.instance.guest_password
    if not rest:
        return _text("\n".join(name for name in (*content.OPENSTACK_FILES_SINCE, "password") if name in files))
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
