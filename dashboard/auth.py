"""Logging in and out with Keystone credentials. The session holds the
token Keystone issued (nothing else grants access): every page validates it
first, so a revoked or expired token sends the browser to the login page."""
from functools import wraps
from urllib.parse import quote

from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from cloud.auth import validator
from dashboard.client import ApiClient, ApiFailure
from identity import tokens

TOKEN = "dashboard.token"
ACCOUNT = "dashboard.account"
TOKENS = "/identity/v3/auth/tokens"


def current_credentials(request):
    token = request.session.get(TOKEN)
    return validator()(token) if token else None


def to_login(request):
    request.session.flush()
    return redirect(f"{reverse('dashboard:login')}?next={quote(request.get_full_path())}")


def error_page(request, failure):
    return render(request, "dashboard/error.html", {"status": failure.status, "message": failure.message},
                  status=failure.status)


def panel(view):
    """A page that needs a logged-in session: `request.api` calls the API
    with the session's token, `request.credentials` is what it stands for.
    The API's 401 logs out; its 403 and 404 are the dashboard's pages."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        credentials = current_credentials(request)
        if credentials is None:
            return to_login(request)
        request.credentials = credentials
        request.account = request.session.get(ACCOUNT, {})
        request.api = ApiClient(request, credentials.token)
        try:
            return view(request, *args, **kwargs)
        except ApiFailure as failure:
            if failure.status == 401:
                return to_login(request)
            return error_page(request, failure)

    return wrapper


def issue(request, auth):
    """(token, token body) from POST /v3/auth/tokens."""
    result = ApiClient(request).call("POST", TOKENS, body={"auth": auth}, params={"nocatalog": ""})
    return result.headers["X-Subject-Token"], result.data["token"]


def start_session(request, token, body):
    client = ApiClient(request, token)
    projects = sorted(client.get("/identity/v3/auth/projects")["projects"], key=lambda project: project["name"])
    if "project" not in body and projects:
        # No default project: the first the user has a role on.
        token, body = issue(request, {"identity": {"methods": ["token"], "token": {"id": token}},
                                      "scope": {"project": {"id": projects[0]["id"]}}})
    request.session.cycle_key()  # a new session id at every login (no fixation)
    request.session[TOKEN] = token
    request.session[ACCOUNT] = {
        "user": body["user"]["name"], "domain": body["user"]["domain"]["name"],
        "project": body.get("project"), "roles": [role["name"] for role in body.get("roles", [])],
        "projects": [{"id": project["id"], "name": project["name"]} for project in projects],
    }
    credentials = validator()(token)
    request.session.set_expiry(credentials.expires_at)


def login(request):
    context = {"domain": "Default", "next": request.GET.get("next", "")}
    if request.method == "POST":
        context.update(domain=request.POST.get("domain", "").strip() or "Default",
                       username=request.POST.get("username", "").strip(), next=request.POST.get("next", ""))
        password = {"user": {"name": context["username"], "domain": {"name": context["domain"]},
                             "password": request.POST.get("password", "")}}
        try:
            token, body = issue(request, {"identity": {"methods": ["password"], "password": password}})
            start_session(request, token, body)
        except ApiFailure as failure:
            context["error"] = ("Wrong domain, user name or password." if failure.status == 401
                                else failure.message)
            return render(request, "dashboard/login.html", context, status=failure.status)
        target = context["next"]
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}) or \
                not target.startswith("/dashboard/"):
            target = reverse("dashboard:overview")
        return redirect(target)
    if current_credentials(request) is not None:
        return redirect("dashboard:overview")
    return render(request, "dashboard/login.html", context)


@require_POST
def logout(request):
    credentials = current_credentials(request)
    if credentials is not None:
        # The whole chain: the password token and every token rescoped from
        # it share their last audit id (Keystone's audit chain).
        tokens.revoke(audit_id=credentials.audit_ids[-1])
    request.session.flush()
    return redirect("dashboard:login")


@require_POST
@panel
def switch_project(request):
    project_id = request.POST.get("project_id", "")
    try:
        token, body = issue(request, {"identity": {"methods": ["token"], "token": {"id": request.credentials.token}},
                                      "scope": {"project": {"id": project_id}}})
    except ApiFailure as failure:
        if failure.status == 401:
            failure = ApiFailure(404, "No such project of yours.")
        return error_page(request, failure)
    start_session(request, token, body)
    return redirect("dashboard:overview")
