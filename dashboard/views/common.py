"""What the dashboard's pages share: the API roots, paging, quota bars,
image names and the way a form's API calls report a refusal."""
from urllib.parse import urlencode

from django.contrib import messages

from dashboard.client import ApiFailure

COMPUTE = "/compute/v2.1"
NETWORK = "/network/v2.0"
PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def image_names(request):
    return {image["id"]: image["name"] or image["id"]
            for image in request.api.get("/image/v2/images", limit=MAX_PAGE_SIZE)["images"]}


def bar(label, used, limit, unit=""):
    """A quota bar: `limit` -1 is unlimited."""
    percent = 0 if limit in (-1, 0, None) else min(100, round(100 * used / limit))
    return {"label": label, "used": used, "limit": "unlimited" if limit == -1 else limit, "unit": unit,
            "percent": percent, "level": "high" if percent >= 90 else "mid" if percent >= 70 else "low"}


def page_size(request):
    try:
        return max(1, min(MAX_PAGE_SIZE, int(request.GET.get("limit", PAGE_SIZE))))
    except ValueError:
        return PAGE_SIZE


def neutron_form(request, steps):
    """Runs the API calls of a form in order; the first refusal is shown in
    place (what the earlier calls made stays, and the message says so)."""
    done = []
    try:
        for label, call in steps:
            call()
            done.append(label)
    except ApiFailure as failure:
        if failure.status in (401, 403):
            raise
        made = f" ({', '.join(done)} made)" if done else ""
        return f"{failure.message}{made}"
    return ""


def split_list(text):
    """The entries of a free-text list (commas, spaces or new lines)."""
    return [entry for entry in text.replace(",", " ").split() if entry]


def said_next(request, failure):
    """A refused action, said on the page the browser is sent to next; the
    API's 401 and 403 are the dashboard's own pages."""
    if failure.status in (401, 403):
        raise failure
    messages.error(request, failure.message)


def deleted(request, path, done):
    """DELETEs `path`: True when gone (`done` said next), False when the API
    refused (its message said next). The caller reads the resource first,
    so another project's is the 404 page before this."""
    try:
        request.api.delete(path)
    except ApiFailure as failure:
        said_next(request, failure)
        return False
    messages.success(request, done)
    return True


def has_next(body, key):
    """Whether the API said there is a page after this one (Glance's
    `next`, the others' `<collection>_links`)."""
    if body.get("next"):
        return True
    return any(entry.get("rel") == "next" for entry in body.get(f"{key}_links") or [])


def paged(request, path, key, **params):
    """One page of an API listing (marker/limit passed through) and the
    links to the first and the next page, keeping the page's filters."""
    limit = page_size(request)
    query = {"limit": limit, **params}
    marker = request.GET.get("marker")
    if marker:
        query["marker"] = marker
    body = request.api.get(path, **query)
    items = body[key]
    kept = {name: value for name, value in request.GET.items() if name not in ("marker", "limit")}
    kept["limit"] = limit
    pages = {}
    if marker:
        pages["first_page"] = "?" + urlencode(kept)
    if items and has_next(body, key):
        pages["next_page"] = "?" + urlencode({**kept, "marker": items[-1]["id"]})
    return items, pages
