"""Version documents: each service root answers discovery the way its
OpenStack counterpart does, with absolute links."""


def link(request, path, rel="self"):
    return {"rel": rel, "href": request.build_absolute_uri(path)}
