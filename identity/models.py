"""Identity: who may use the cloud, in which projects, with which roles,
and where its services are (the catalog)."""
import uuid

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone


def new_id():
    return uuid.uuid4().hex


DEFAULT_DOMAIN_ID = "default"


class RevokingQuerySet(models.QuerySet):
    """update() of a column whose change can take a permission away (the
    model's REVOKING_FIELDS) saves row by row, so the revocation rule on the
    save signals (identity/revocation.py) sees every change; other updates
    stay one statement."""

    def update(self, **values):
        columns = {self.model._meta.get_field(name).attname for name in values}
        if not columns & set(self.model.REVOKING_FIELDS):
            from identity.summaries import identity_changed

            identity_changed(self.model)  # no save signal comes from one statement
            return super().update(**values)
        with transaction.atomic(using=self.db):
            rows = list(self.select_for_update())
            for row in rows:
                for field, value in values.items():
                    setattr(row, field, value)
                row.save(update_fields=list(columns))
        return len(rows)


class Domain(models.Model):
    REVOKING_FIELDS = ("enabled",)
    objects = RevokingQuerySet.as_manager()

    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    name = models.CharField(max_length=255, unique=True)
    description = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    extra = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Project(models.Model):
    REVOKING_FIELDS = ("enabled", "parent_id", "is_admin_project")
    objects = RevokingQuerySet.as_manager()

    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    name = models.CharField(max_length=255)
    domain = models.ForeignKey(Domain, on_delete=models.PROTECT, related_name="projects")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    description = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    tags = models.JSONField(default=list, blank=True)
    extra = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Keystone's admin project ([resource] admin_project_name): `admin` on it
    # is admin of the whole cloud. Bootstrap marks its `admin` project.
    is_admin_project = models.BooleanField(default=False, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["domain", "name"], name="project_name_unique_in_domain"),
            models.UniqueConstraint(fields=["is_admin_project"], condition=Q(is_admin_project=True),
                                    name="one_admin_project"),
        ]

    def __str__(self):
        return self.name

    def ancestor_ids(self):
        """Ids of the project's ancestors, parent first. Stops at a project
        already seen, so a cycle written behind the API's back cannot loop."""
        ancestors, seen = [], {self.id}
        parent_id = self.parent_id
        while parent_id and parent_id not in seen:
            ancestors.append(parent_id)
            seen.add(parent_id)
            parent_id = Project.objects.filter(id=parent_id).values_list("parent_id", flat=True).first()
        return ancestors

    def descendant_ids(self):
        """Ids of every project below this one (one query per level)."""
        found, seen, level = [], {self.id}, [self.id]
        while level:
            level = [pk for pk in Project.objects.filter(parent_id__in=level).values_list("id", flat=True)
                     if pk not in seen]
            seen.update(level)
            found.extend(level)
        return found

    def cannot_have_parent(self, parent):
        """Why `parent` cannot be this project's parent (it is the project
        itself or one of its descendants: a cycle), or None."""
        if parent is None or self._state.adding:
            return None
        if parent.id == self.id or self.id in parent.ancestor_ids():
            return "A project cannot be its own parent, nor the child of one of its descendants."
        return None

    def clean(self):
        # The Django admin's forms ask here; the REST API's serializer too.
        problem = self.cannot_have_parent(self.parent) if self.parent_id else None
        if problem:
            raise ValidationError({"parent": problem})

    def save(self, *args, **kwargs):
        if self._state.adding or not self.parent_id:
            return super().save(*args, **kwargs)
        with transaction.atomic():
            # Projects of a domain change parents one at a time, under its
            # lock, checked again on what is stored: two moves that are each
            # fine alone (A under B, B under A) cannot both pass.
            Domain.objects.select_for_update().filter(pk=self.domain_id).exists()
            problem = self.cannot_have_parent(Project.objects.filter(pk=self.parent_id).first())
            if problem:
                raise ValidationError({"parent": problem})
            return super().save(*args, **kwargs)


class User(models.Model):
    REVOKING_FIELDS = ("enabled", "password")
    objects = RevokingQuerySet.as_manager()

    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    name = models.CharField(max_length=255)
    domain = models.ForeignKey(Domain, on_delete=models.PROTECT, related_name="users")
    password = models.CharField(max_length=255, blank=True, default="")
    enabled = models.BooleanField(default=True)
    email = models.CharField(max_length=255, blank=True, default="")
    description = models.TextField(blank=True, default="")
    default_project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    password_expires_at = models.DateTimeField(null=True, blank=True)
    # Failed password authentications in a row, and when the last one was
    # (the lockout of identity.security_compliance).
    failed_auth_count = models.PositiveIntegerField(default=0)
    failed_auth_at = models.DateTimeField(null=True, blank=True)
    # Keystone's user options (identity.user_options): the ones set, by name.
    options = models.JSONField(default=dict, blank=True)
    # The day the user last authenticated (or was enabled), written at most
    # once a day: what disable_user_account_days_inactive counts from.
    last_active_at = models.DateField(null=True, blank=True)
    extra = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["domain", "name"], name="user_name_unique_in_domain")]

    def __str__(self):
        return self.name


class PasswordHistory(models.Model):
    """A password a user has had (its hash), newest last: what
    unique_last_password_count and minimum_password_age look at."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="password_history")
    password = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="password_history_newest")]

    def __str__(self):
        return f"password of {self.user_id} set {self.created_at:%Y-%m-%d %H:%M:%S}"


class Group(models.Model):
    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    name = models.CharField(max_length=255)
    domain = models.ForeignKey(Domain, on_delete=models.PROTECT, related_name="groups")
    description = models.TextField(blank=True, default="")
    users = models.ManyToManyField(User, related_name="groups", blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["domain", "name"], name="group_name_unique_in_domain")]

    def __str__(self):
        return self.name


class Role(models.Model):
    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    name = models.CharField(max_length=255)
    domain = models.ForeignKey(Domain, null=True, blank=True, on_delete=models.CASCADE, related_name="roles")
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["name"], condition=Q(domain=None), name="global_role_name_unique"),
            models.UniqueConstraint(fields=["domain", "name"], name="domain_role_name_unique"),
        ]

    def __str__(self):
        return self.name


class ImpliedRole(models.Model):
    """Holding `prior_role` gives `implied_role` too (Keystone's role
    inference rules); identity.assignments expands them."""

    prior_role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="implies")
    implied_role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="implied_by")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prior_role", "implied_role"], name="implied_role_unique"),
            models.CheckConstraint(condition=~Q(prior_role=models.F("implied_role")), name="implied_role_not_itself"),
        ]

    def __str__(self):
        return f"{self.prior_role} implies {self.implied_role}"


class RoleAssignment(models.Model):
    """A role given to one actor (user or group) on one target: a project, a
    domain, or the system (the whole cloud, Keystone's system scope "all").
    `inherited` on a domain applies to every project in it."""
    REVOKING_FIELDS = ("role_id", "user_id", "group_id", "project_id", "domain_id", "system", "inherited")
    objects = RevokingQuerySet.as_manager()

    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="assignments")
    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.CASCADE, related_name="role_assignments")
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE, related_name="role_assignments")
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="role_assignments")
    domain = models.ForeignKey(Domain, null=True, blank=True, on_delete=models.CASCADE, related_name="role_assignments")
    system = models.BooleanField(default=False)
    inherited = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(group__isnull=True)) | (Q(user__isnull=True) & Q(group__isnull=False)),
                name="assignment_one_actor"),
            models.CheckConstraint(
                condition=(Q(project__isnull=False) & Q(domain__isnull=True) & Q(system=False))
                | (Q(project__isnull=True) & Q(domain__isnull=False) & Q(system=False))
                | (Q(project__isnull=True) & Q(domain__isnull=True) & Q(system=True) & Q(inherited=False)),
                name="assignment_one_target_or_system"),
            models.UniqueConstraint(
                fields=["role", "user", "group", "project", "domain", "system", "inherited"],
                nulls_distinct=False, name="assignment_unique_with_system"),
        ]

    def __str__(self):
        actor = self.user or self.group
        target = "the system" if self.system else self.project or self.domain
        return f"{self.role} for {actor} on {target}"


class Region(models.Model):
    id = models.CharField(max_length=255, primary_key=True)
    description = models.TextField(blank=True, default="")
    parent_region = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")

    def __str__(self):
        return self.id


class Service(models.Model):
    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    type = models.CharField(max_length=255)
    name = models.CharField(max_length=255, blank=True, default="")
    description = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["type"]

    def __str__(self):
        return f"{self.name} ({self.type})"


class Endpoint(models.Model):
    INTERFACES = [("public", "public"), ("internal", "internal"), ("admin", "admin")]

    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="endpoints")
    interface = models.CharField(max_length=8, choices=INTERFACES)
    region = models.ForeignKey(Region, null=True, blank=True, on_delete=models.PROTECT, related_name="endpoints")
    url = models.CharField(max_length=1024)
    enabled = models.BooleanField(default=True)

    def __str__(self):
        return f"{self.service.type} {self.interface} {self.url}"


class EndpointGroup(models.Model):
    """Endpoints chosen by what they are (Keystone's OS-EP-FILTER): every
    endpoint whose `interface`, `service_id` and `region_id` equal the
    filters it names. Given to a project, it limits the project's catalog."""

    FILTERS = ("interface", "service_id", "region_id")

    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    filters = models.JSONField(default=dict)
    projects = models.ManyToManyField(Project, related_name="endpoint_groups", blank=True,
                                      through="ProjectEndpointGroup")

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name

    def matches(self, endpoint):
        return all(getattr(endpoint, name) == value for name, value in self.filters.items())


class ProjectEndpointGroup(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    endpoint_group = models.ForeignKey(EndpointGroup, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "endpoint_group"],
                                               name="project_endpoint_group_unique")]


class ProjectEndpoint(models.Model):
    """One endpoint given to a project by itself (OS-EP-FILTER): once a
    project has any, or any endpoint group, its catalog has only those."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="endpoint_associations")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="project_associations")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "endpoint"], name="project_endpoint_unique")]


class AccessRule(models.Model):
    """A user's permission for an application credential to call one API:
    the service's catalog type, the HTTP method, and the path under the
    service's root ("/v2.1/servers/*/ips": `*` matches within one path
    segment, `**` across segments). Rules outlive the credentials naming
    them and are shared by a user's credentials that ask for the same one."""

    METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    user = models.ForeignKey("User", on_delete=models.CASCADE, related_name="access_rules")
    service = models.CharField(max_length=64)
    method = models.CharField(max_length=16)
    path = models.CharField(max_length=255)

    class Meta:
        ordering = ["service", "path", "method"]
        constraints = [models.UniqueConstraint(fields=["user", "service", "method", "path"],
                                               name="access_rule_unique_per_user")]


class ApplicationCredential(models.Model):
    """A secret a user hands to an application: it authenticates as the
    user, in one project, with a subset of the user's roles there, and
    (when it has access rules) only for the API calls they name."""

    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    name = models.CharField(max_length=255)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="application_credentials")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="application_credentials")
    secret_hash = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True)
    unrestricted = models.BooleanField(default=False)
    roles = models.ManyToManyField(Role, related_name="application_credentials")
    access_rules = models.ManyToManyField(AccessRule, related_name="application_credentials", blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="app_cred_name_unique_per_user")]

    def __str__(self):
        return self.name


class Trust(models.Model):
    """A trustor's delegation of some of their roles on one project to a
    trustee (Keystone's OS-TRUST): the trustee gets tokens scoped to the
    trust, acting as the trustor when `impersonation`, as themself
    otherwise. identity.trusts owns the rules."""

    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    trustor = models.ForeignKey(User, on_delete=models.CASCADE, related_name="trusts_given")
    trustee = models.ForeignKey(User, on_delete=models.CASCADE, related_name="trusts_received")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="trusts")
    roles = models.ManyToManyField(Role, related_name="trusts")
    impersonation = models.BooleanField(default=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    remaining_uses = models.PositiveIntegerField(null=True, blank=True)  # None: unlimited
    allow_redelegation = models.BooleanField(default=False)
    redelegation_count = models.PositiveIntegerField(default=0)
    # The trust whose token made this one: deleting it deletes the chain.
    redelegated_trust = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE,
                                          related_name="redelegations")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"trust {self.id} from {self.trustor_id} to {self.trustee_id}"


class OAuthConsumer(models.Model):
    """A third-party application users may delegate roles to (Keystone's
    OS-OAUTH1 consumer). Its secret is kept as given: HMAC-SHA1 signatures
    are checked with it."""

    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    secret = models.CharField(max_length=64)
    description = models.TextField(blank=True, default="")
    extra = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"oauth consumer {self.id}"


class OAuthRequestToken(models.Model):
    """A consumer's request for roles on a project; a user authorizes it
    (choosing the roles, getting a verifier), then the consumer trades it,
    once, for an access token (identity.oauth1 owns the rules)."""

    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    secret = models.CharField(max_length=64)
    consumer = models.ForeignKey(OAuthConsumer, on_delete=models.CASCADE, related_name="request_tokens")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    authorizing_user = models.ForeignKey(User, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    roles = models.ManyToManyField(Role, related_name="+")
    verifier = models.CharField(max_length=64, blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"oauth request token {self.id}"


class OAuthAccessToken(models.Model):
    """What a consumer authenticates with to get tokens acting as the
    authorizing user, scoped to the project with the delegated roles."""

    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    secret = models.CharField(max_length=64)
    consumer = models.ForeignKey(OAuthConsumer, on_delete=models.CASCADE, related_name="access_tokens")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    authorizing_user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="oauth_access_tokens")
    roles = models.ManyToManyField(Role, related_name="+")
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"oauth access token {self.id} of {self.authorizing_user_id}"


class DomainConfigOption(models.Model):
    """One option of a domain's identity configuration (Keystone's
    /v3/domains/{id}/config), stored as given; identity.domain_config says
    which groups and options there are. Sensitive ones are never shown."""

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="config_options")
    group = models.CharField(max_length=255)
    option = models.CharField(max_length=255)
    value = models.JSONField(null=True)
    sensitive = models.BooleanField(default=False)

    class Meta:
        ordering = ["group", "option"]
        constraints = [models.UniqueConstraint(fields=["domain", "group", "option"],
                                               name="domain_config_option_unique")]

    def __str__(self):
        return f"{self.domain_id} [{self.group}] {self.option}"


class Policy(models.Model):
    """A policy document kept for services (Keystone's /v3/policies): the
    blob is the client's; Stratus's own rules are in its code."""

    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    type = models.CharField(max_length=255)
    blob = models.TextField()
    extra = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "policies"

    def __str__(self):
        return f"{self.type} policy {self.id}"


class Credential(models.Model):
    """A secret kept for a user (Keystone's /v3/credentials). The blob is the
    client's text; an `ec2` credential's blob is JSON holding its access and
    secret keys, its id is derived from the access key and it belongs to a
    project (identity.credentials owns those rules)."""

    id = models.CharField(max_length=64, primary_key=True, default=new_id)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="credentials")
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="credentials")
    type = models.CharField(max_length=255)
    blob = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.type} credential of {self.user_id}"


class RevocationEvent(models.Model):
    """Tokens issued before `issued_before` that match every attribute set
    here are revoked. Events older than the longest token life are purged."""

    user_id = models.CharField(max_length=64, null=True, blank=True, db_index=True)
    project_id = models.CharField(max_length=64, null=True, blank=True)
    domain_id = models.CharField(max_length=64, null=True, blank=True)
    audit_id = models.CharField(max_length=64, null=True, blank=True)
    application_credential_id = models.CharField(max_length=64, null=True, blank=True)
    trust_id = models.CharField(max_length=64, null=True, blank=True)
    # The OS-OAUTH1 access token, or its consumer, a token was made with.
    access_token_id = models.CharField(max_length=64, null=True, blank=True)
    consumer_id = models.CharField(max_length=64, null=True, blank=True)
    system = models.BooleanField(null=True, blank=True)  # True: only system-scoped tokens
    issued_before = models.DateTimeField()
    revoked_at = models.DateTimeField(default=timezone.now, db_index=True)

    MATCHED_ATTRIBUTES = ("user_id", "project_id", "domain_id", "application_credential_id", "trust_id",
                          "access_token_id", "consumer_id", "system")

    class Meta:
        constraints = [
            # An event naming nothing would match every token in the cloud.
            models.CheckConstraint(
                condition=(Q(user_id__isnull=False) & ~Q(user_id=""))
                | (Q(project_id__isnull=False) & ~Q(project_id=""))
                | (Q(domain_id__isnull=False) & ~Q(domain_id=""))
                | (Q(audit_id__isnull=False) & ~Q(audit_id=""))
                | (Q(application_credential_id__isnull=False) & ~Q(application_credential_id=""))
                | (Q(trust_id__isnull=False) & ~Q(trust_id=""))
                | (Q(access_token_id__isnull=False) & ~Q(access_token_id=""))
                | (Q(consumer_id__isnull=False) & ~Q(consumer_id="")),
                name="revocation_names_something"),
        ]

    def __str__(self):
        parts = [f"{name}={getattr(self, name)}" for name in self.MATCHED_ATTRIBUTES + ("audit_id",) if getattr(self, name)]
        return f"revoke {' '.join(parts)} before {self.issued_before:%Y-%m-%d %H:%M:%S}"
