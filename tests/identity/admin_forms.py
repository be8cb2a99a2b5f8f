"""Posting a Django admin change form as an operator would: the form the
page serves, with some fields changed."""
from html.parser import HTMLParser

from django.contrib.auth import get_user_model
from django.test import Client


class _FormFields(HTMLParser):
    """The values a browser would submit from the page's main form."""

    def __init__(self):
        super().__init__()
        self.fields = []
        self._select = None
        self._textarea = None
        self._in_form = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("method", "").lower() == "post" and attrs.get("id", "").endswith("_form"):
            self._in_form = True
        if not self._in_form:
            return
        name = attrs.get("name")
        if tag == "input" and name:
            kind = attrs.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self.fields.append((name, attrs.get("value", "on")))
            elif kind not in ("submit", "button", "file"):
                self.fields.append((name, attrs.get("value", "")))
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in attrs:
            self.fields.append((self._select, attrs.get("value", "")))
        elif tag == "textarea" and name:
            self._textarea = [name, ""]

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.fields.append(tuple(self._textarea))
            self._textarea = None
        elif tag == "form":
            self._in_form = False


def operator_client():
    """A test client logged in as bootstrap's Django superuser."""
    client = Client()
    client.force_login(get_user_model().objects.get(username="admin"))
    return client


def post_change_form(client, path, changes=(), unchecked=()):
    """GETs the admin form at `path`, applies `changes` ({field: value},
    replacing what the page had) and leaves the `unchecked` checkboxes
    off, then POSTs it. Returns the response."""
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    parser = _FormFields()
    parser.feed(page.content.decode())
    changes = dict(changes)
    data = {}
    for name, value in parser.fields:
        if name in changes or name in unchecked:
            continue
        data.setdefault(name, []).append(value)
    for name, value in changes.items():
        data[name] = value if isinstance(value, list) else [value]
    data["_save"] = ["Save"]
    return client.post(path, data)
