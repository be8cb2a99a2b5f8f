"""marker/limit pagination as Nova, Glance, Neutron and Cinder do it:
`?limit=N&marker=<id of the last item seen>`, with a `next` link when a
full page came back. Keyset based, so a page costs the same at any depth."""
from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.db.models import F, Q

from cloud.errors import BadRequest

MAX_LIMIT = 1000


def parse_limit(request, max_limit=MAX_LIMIT):
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        return max_limit
    try:
        limit = int(raw)
    except ValueError:
        raise BadRequest(f"Invalid input for field 'limit': {raw!r} is not an integer.")
    if limit < 0:
        raise BadRequest("Invalid input for field 'limit': must be 0 or more.")
    return min(limit, max_limit)


def parse_sort(request, allowed, default, key_param="sort_key", dir_param="sort_dir"):
    """[(field, 'asc'|'desc'), ...] from repeated sort_key/sort_dir params or a
    Glance-style `sort=name:asc,created_at`."""
    pairs = []
    if request.query_params.get("sort"):
        for part in request.query_params["sort"].split(","):
            name, _, direction = part.strip().partition(":")
            pairs.append((name, direction or "desc"))
    else:
        keys = request.query_params.getlist(key_param)
        dirs = request.query_params.getlist(dir_param)
        for direction in dirs[len(keys):]:  # directions without a key are checked all the same
            if direction not in ("asc", "desc"):
                raise BadRequest(f"Invalid input for field '{dir_param}': {direction!r} is not asc or desc.")
        for index, name in enumerate(keys):
            pairs.append((name, dirs[index] if index < len(dirs) else (dirs[0] if dirs else "desc")))
    for name, direction in pairs:
        if name not in allowed:
            raise BadRequest(f"Invalid input for field '{key_param}': unknown sort key {name!r}.")
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid input for field '{dir_param}': {direction!r} is not asc or desc.")
    pairs = [(allowed[name], direction) for name, direction in pairs] or list(default)
    if not any(field == "id" for field, _ in pairs):
        pairs.append(("id", pairs[-1][1] if pairs else "asc"))
    return pairs


def order_by(pairs):
    # NULL sorts as the largest value on every database (PostgreSQL's own
    # order), which after_marker relies on.
    return [F(field).desc(nulls_first=True) if direction == "desc" else F(field).asc(nulls_last=True)
            for field, direction in pairs]


def after_marker(queryset, marker_row, pairs):
    """Rows strictly after marker_row in the order `pairs` gives (fields are
    the model's own columns)."""
    condition = Q()
    equal = Q()
    for field, direction in pairs:
        value = getattr(marker_row, field)
        if value is None:
            # Nothing is larger than NULL; everything else is smaller.
            later = Q(pk__in=[]) if direction == "asc" else Q(**{f"{field}__isnull": False})
            same = Q(**{f"{field}__isnull": True})
        else:
            lookup = "gt" if direction == "asc" else "lt"
            later = Q(**{f"{field}__{lookup}": value})
            if direction == "asc" and queryset.model._meta.get_field(field).null:
                later |= Q(**{f"{field}__isnull": True})
            same = Q(**{field: value})
        condition |= equal & later
        equal &= same
    return queryset.filter(condition)


def paginate(request, queryset, pairs, max_limit=MAX_LIMIT, marker_field="id", markers=None,
             marker_not_found="marker [{marker}] not found", marker_error=BadRequest, offset=0):
    """(rows, next_url or None). The marker is looked for by `marker_field`
    in `markers` (by default every row of the model; narrower where the
    field is unique only within it, its first row taken); a marker found
    nowhere raises `marker_error` (a 400; Cinder's is a 404). `offset`
    rows after the marker are skipped (Cinder's `offset`)."""
    limit = parse_limit(request, max_limit)
    queryset = queryset.order_by(*order_by(pairs))
    marker = request.query_params.get("marker")
    if marker:
        markers = queryset.model._default_manager.all() if markers is None else markers
        try:
            marker_row = markers.filter(**{marker_field: marker}).first()
        except (ValueError, ValidationError):  # not even the shape of a marker (a UUID column)
            marker_row = None
        if marker_row is None:
            raise marker_error(marker_not_found.format(marker=marker))
        queryset = after_marker(queryset, marker_row, pairs)
    rows = list(queryset[offset:offset + limit])
    next_url = None
    if rows and len(rows) == limit:
        params = request.query_params.copy()
        params.pop("offset", None)  # the marker already stands past it
        params["marker"] = str(getattr(rows[-1], marker_field))
        params["limit"] = str(limit)
        next_url = request.build_absolute_uri(request.path) + "?" + urlencode(params, doseq=True)
    return rows, next_url
