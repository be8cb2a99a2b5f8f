"""Swift's header conventions: metadata headers in and out, timestamps."""
import math

from django.utils.http import http_date

from objects import data
from objects.api.errors import bad_request

KINDS = {"account": "Account", "container": "Container", "object": "Object"}


def metadata_from(request, kind, removals=True):
    """{lower-case name: value} from X-<Kind>-Meta-* (an empty value, or
    X-Remove-<Kind>-Meta-*, is None: remove it); 400 past Swift's limits."""
    prefix = f"x-{kind}-meta-"
    remove_prefix = f"x-remove-{kind}-meta-"
    found = {}
    for header, value in request.headers.items():
        lower = header.lower()
        if lower.startswith(prefix):
            name = lower[len(prefix):]
            found[name] = value if value or not removals else None
            check_name, check_value = header, value
        elif removals and lower.startswith(remove_prefix):
            name = lower[len(remove_prefix):]
            found[name] = None
            check_name, check_value = header, ""
        else:
            continue
        if not name:
            raise bad_request("Metadata name cannot be empty")
        if len(name.encode()) > data.MAX_META_NAME_LENGTH:
            raise bad_request(f"Metadata name too long: {check_name}; max {data.MAX_META_NAME_LENGTH}")
        if len(check_value.encode()) > data.MAX_META_VALUE_LENGTH:
            raise bad_request(f"Metadata value longer than {data.MAX_META_VALUE_LENGTH}: {check_name}")
    return found


def check_metadata_totals(metadata):
    """Swift's limits on everything an item keeps at once."""
    if len(metadata) > data.MAX_META_COUNT:
        raise bad_request(f"Too many metadata items; max {data.MAX_META_COUNT}")
    if sum(len(name.encode()) + len(value.encode()) for name, value in metadata.items()) > data.MAX_META_OVERALL_SIZE:
        raise bad_request(f"Total metadata too large; max {data.MAX_META_OVERALL_SIZE}")


def merged(current, changes):
    result = {**current, **changes}
    return {name: value for name, value in result.items() if value is not None}


def meta_headers(kind, metadata):
    title = KINDS[kind]
    return {f"X-{title}-Meta-{'-'.join(part.capitalize() for part in name.split('-'))}": value
            for name, value in metadata.items()}


def timestamp_header(moment):
    return f"{moment.timestamp():.5f}"


def last_modified_header(moment):
    # Swift rounds up: a client comparing with If-Modified-Since sees the
    # object as not newer than the second it was written in.
    return http_date(math.ceil(moment.timestamp()))


def listing_time(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")
