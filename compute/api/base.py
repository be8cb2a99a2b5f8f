"""What every Compute v2.1 view shares: the microversion of the request
(OpenStack-API-Version / X-OpenStack-Nova-API-Version, answered in the
same headers), request bodies inside their envelope, Nova's time format."""
import math
import re
import uuid

from django.db import DataError, connection, transaction

from cloud import inprocess
from cloud.errors import ApiError, BadRequest, Conflict, NotFound
from cloud.negotiation import JsonOnly
from cloud.pagination import order_by, paginate
from cloud.views import ApiView
from compute.models import InvalidState

MIN_VERSION = (2, 1)
# The highest microversion whose behaviour Stratus implements. Every
# version-dependent difference up to here is handled where it applies
# (search for `request.api_version >=`).
MAX_VERSION = (2, 60)


def is_uuid(value):
    """Whether `value` reads as a UUID (what every id of a server, group or
    migration is): anything else names nothing and must not reach a query."""
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def paginate_from(request, version, queryset, pairs, **options):
    """(rows, next link or None): a page (cloud.pagination.paginate) from
    microversion `version` on; before it every row, in the same order
    (limit and marker are ignored there, as in Nova)."""
    if request.api_version < version:
        return list(queryset.order_by(*order_by(pairs))), None
    return paginate(request, queryset, pairs, **options)


def request_ids(request):
    """(request id, user id, project id): who asked, as an instance action
    records it (compute.models.start_action)."""
    return request._request.request_id, request.auth.user_id, request.auth.project_id


def begin_or_conflict(instance, transition, **options):
    """Starts `transition` (Instance.begin: compare-and-swap on the state);
    409 when the instance is not in a state it starts from."""
    try:
        instance.begin(transition, **options)
    except InvalidState as error:
        raise Conflict(str(error)) from None


def version_string(version):
    return f"{version[0]}.{version[1]}"


def parse_version(request):
    """The microversion a request asks for: (2, N). No header: 2.1."""
    raw = None
    header = request.headers.get("OpenStack-API-Version")
    if header:
        for part in header.split(","):
            service, _, value = part.strip().partition(" ")
            if service.lower() == "compute":
                raw = value.strip()
    if raw is None:
        raw = request.headers.get("X-OpenStack-Nova-API-Version")
    if raw is None:
        return MIN_VERSION
    if raw.lower() == "latest":
        return MAX_VERSION
    match = re.fullmatch(r"(\d+)\.(\d+)", raw.strip())
    if not match:
        raise BadRequest(f"Version {raw} is not a valid microversion.")
    version = (int(match.group(1)), int(match.group(2)))
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise ApiError(f"Version {raw} is not supported by the API. Minimum is {version_string(MIN_VERSION)} "
                       f"and maximum is {version_string(MAX_VERSION)}.", status=406)
    return version


def nova_time(value):
    """Nova's timestamp format: 2012-08-20T21:11:09Z (no fraction)."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def nova_time_usec(value):
    """The format of action and fault times: 2018-04-25T01:26:36.000000."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value else None


class ComputeView(ApiView):
    """Base of Compute views. `request.api_version` is the (major, minor) asked for
    (DRF owns `request.version`)."""

    content_negotiation_class = JsonOnly

    def initial(self, request, *args, **kwargs):
        request.api_version = MIN_VERSION
        request.api_version = parse_version(request)
        super().initial(request, *args, **kwargs)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        version = version_string(getattr(request, "api_version", None) or MIN_VERSION)
        response["OpenStack-API-Version"] = f"compute {version}"
        response["X-OpenStack-Nova-API-Version"] = version
        response["Vary"] = "OpenStack-API-Version, X-OpenStack-Nova-API-Version"
        return response

    def body(self, name):
        """The object inside the request's {"name": {...}} envelope."""
        data = self.request.data
        if not isinstance(data, dict) or not isinstance(data.get(name), dict):
            raise BadRequest(f"Invalid input for field '{name}': the request body must be {{\"{name}\": {{...}}}}.")
        return data[name]

    @property
    def credentials(self):
        return self.request.auth


class ProxyView(ComputeView):
    """One of Nova's proxy APIs (to images, networks...): served below
    microversion `removed_in`, 404 from it on, as in Nova."""

    removed_in = (2, 36)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.api_version >= self.removed_in:
            raise NotFound("The resource could not be found.")


# Nova's status for another service's refusal, by the refusal's type or
# status: a conflict is a 400 in most of Nova's proxies, an over-quota a 403.
PROXIED_STATUSES = {409: 400, 413: 403, "OverQuota": 403}


def forward(request, method, path, body=None, params=None, headers=None, statuses=PROXIED_STATUSES):
    """Another service's API (Neutron's, Cinder's) called in-process with
    the caller's token, as Nova calls them over HTTP: that service's policy,
    validation and quotas decide. Its answer's body, or its refusal in
    Nova's envelope with the status `statuses` gives it."""
    result = inprocess.call(request._request, method, path, request.META.get("HTTP_X_AUTH_TOKEN"), body, params,
                            headers)
    if result.status >= 400:
        error = result.data.get("NeutronError") if isinstance(result.data, dict) else None
        kind = error.get("type") if isinstance(error, dict) else None
        status = statuses.get(kind, statuses.get(result.status, result.status))
        raise ApiError(inprocess.error_message(result.status, result.data), status=status)
    return result.data


def neutron(request, method, path, body=None, params=None, statuses=PROXIED_STATUSES):
    return forward(request, method, f"/network/v2.0{path}", body, params, statuses=statuses)


def cinder(request, method, path, body=None, params=None, statuses=PROXIED_STATUSES):
    """A Block Storage v3 call in the caller's project (`path` after it)."""
    return forward(request, method, f"/volume/v3/{request.auth.project_id}{path}", body, params,
                   {"OpenStack-API-Version": "volume 3.0"}, statuses)


class ServiceProxy(ProxyView):
    """A proxy to another service's API: `neutron` and `cinder` call it."""

    statuses = PROXIED_STATUSES

    def neutron(self, method, path, body=None, params=None):
        return neutron(self.request, method, path, body, params, self.statuses)

    def cinder(self, method, path, body=None, params=None):
        return cinder(self.request, method, path, body, params, self.statuses)


def require_int(value, field, minimum=0, maximum=2 ** 31 - 1):
    if isinstance(value, bool):
        raise BadRequest(f"Invalid input for field '{field}': {value!r} is not an integer.")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input for field '{field}': {value!r} is not an integer.")
    if isinstance(value, float) and value != number:
        raise BadRequest(f"Invalid input for field '{field}': {value!r} is not an integer.")
    if number < minimum or number > maximum:
        raise BadRequest(f"Invalid input for field '{field}': {number} must be between {minimum} and {maximum}.")
    return number


def require_float(value, field, minimum=None, exclusive_minimum=None):
    """A JSON number (or a string holding one) of field `field`."""
    if isinstance(value, bool):
        raise BadRequest(f"Invalid input for field '{field}': {value!r} is not a number.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input for field '{field}': {value!r} is not a number.") from None
    if not math.isfinite(number):
        raise BadRequest(f"Invalid input for field '{field}': {value!r} is not a finite number.")
    if exclusive_minimum is not None and number <= exclusive_minimum:
        raise BadRequest(f"Invalid input for field '{field}': {number} must be greater than {exclusive_minimum}.")
    if minimum is not None and number < minimum:
        raise BadRequest(f"Invalid input for field '{field}': {number} must be at least {minimum}.")
    return number


def require_regex(pattern, field):
    """A regular expression the database itself accepts: a name filter runs
    in PostgreSQL (whose syntax differs from Python's), SQLite runs
    Python's `re`. A pattern either refuses is a 400 naming `field`."""
    try:
        re.compile(pattern)
    except re.error:
        raise BadRequest(f"Invalid input for field '{field}': {pattern!r} is not a regular expression.") from None
    if connection.vendor == "postgresql":
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT '' ~ %s", [pattern])
        except DataError:
            raise BadRequest(f"Invalid input for field '{field}': {pattern!r} is not a regular expression "
                             f"this cloud's database accepts.") from None
    return pattern


def require_string(value, field, max_length=255, allow_empty=False):
    if not isinstance(value, str):
        raise BadRequest(f"Invalid input for field '{field}': {value!r} is not a string.")
    value = value.strip()
    if not value and not allow_empty:
        raise BadRequest(f"Invalid input for field '{field}': must not be empty.")
    if len(value) > max_length:
        raise BadRequest(f"Invalid input for field '{field}': longer than {max_length} characters.")
    return value


def require_bool(value, field):
    if isinstance(value, bool):
        return value
    lowered = str(value).lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise BadRequest(f"Invalid input for field '{field}': {value!r} is not a boolean.")


DISK_CONFIGS = {"AUTO": True, "MANUAL": False}


def require_disk_config(value, field="OS-DCF:diskConfig"):
    """Nova's OS-DCF:diskConfig, AUTO or MANUAL: whether it is AUTO."""
    if value not in DISK_CONFIGS:
        raise BadRequest(f"Invalid input for field '{field}': {value!r} is not one of 'AUTO', 'MANUAL'.")
    return DISK_CONFIGS[value]


def disk_config_of(instance):
    return "AUTO" if instance.auto_disk_config else "MANUAL"


def require_metadata(value, field="metadata", limit=None):
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid input for field '{field}': must be an object of string keys and values.")
    for key, item in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 255:
            raise BadRequest(f"Invalid input for field '{field}': keys must be strings of 1 to 255 characters.")
        if not isinstance(item, str) or len(item) > 255:
            raise BadRequest(f"Invalid input for field '{field}/{key}': values must be strings of at most "
                             f"255 characters.")
    if limit is not None and 0 <= limit < len(value):
        raise ApiError(f"Quota exceeded for metadata_items: at most {limit} items are allowed.", status=403)
    return dict(value)
