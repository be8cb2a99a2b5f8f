"""Keystone's resource bodies."""
from datetime import timezone

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.urls import reverse
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from identity.models import (
    DEFAULT_DOMAIN_ID, AccessRule, ApplicationCredential, Credential, Domain, Policy, Endpoint, Group, Project, Region, Role, Service, User,
)
from django.utils import timezone as dj_timezone

from cloud.errors import NotFound
from identity import security_compliance, user_options

# Keystone's schema: a domain's or a project's name is 1 to 64 characters.
SHORT_NAME_LENGTH = 64


class StrictBooleanField(serializers.BooleanField):
    """A JSON true or false, as Keystone's schema takes it: "True" is a
    string, a 400, not a boolean."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class IdentitySerializer(serializers.ModelSerializer):
    """Adds Keystone's `links: {"self": ...}` from the view's route name."""

    serializer_field_mapping = {**serializers.ModelSerializer.serializer_field_mapping,
                                models.BooleanField: StrictBooleanField}
    links = serializers.SerializerMethodField()
    route = None  # URL name of the member route

    # Clients send `"description": null` for "none": stored as empty text.
    NULL_AS_EMPTY = ("description", "email")

    def to_internal_value(self, data):
        if isinstance(data, dict):
            data = {key: "" if value is None and key in self.NULL_AS_EMPTY else value for key, value in data.items()}
        validated = super().to_internal_value(data)
        if isinstance(data, dict) and self._keeps_extra():
            # Keystone keeps attributes it does not know and shows them back.
            known = set(self.fields) | {"extra"}
            unknown = {key: value for key, value in data.items() if key not in known}
            if unknown:
                validated["extra"] = {**(getattr(self.instance, "extra", None) or {}), **unknown}
        return validated

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if self._keeps_extra():
            for key, value in (instance.extra or {}).items():
                data.setdefault(key, value)
        return data

    def _keeps_extra(self):
        model = getattr(getattr(self, "Meta", None), "model", None)
        return model is not None and any(field.name == "extra" for field in model._meta.get_fields())

    def get_validators(self):
        return []  # uniqueness is the database's: the view answers 409 on a duplicate

    def get_fields(self):
        fields = super().get_fields()
        for field in fields.values():
            field.validators = [v for v in field.validators if not isinstance(v, UniqueValidator)]
        return fields

    def get_links(self, obj):
        request = self.context["request"]
        return {"self": request.build_absolute_uri(reverse(self.route, args=[obj.pk]))}


def default_domain():
    return Domain.objects.get(pk=DEFAULT_DOMAIN_ID)


class ReferenceField(serializers.PrimaryKeyRelatedField):
    """An id naming another resource; one that names none is Keystone's 404
    (Could not find domain: X.), not a validation error."""

    def __init__(self, kind, **kwargs):
        self.kind = kind
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str) and not self.get_queryset().filter(pk=data).exists():
            raise NotFound(f"Could not find {self.kind}: {data}.")
        return super().to_internal_value(data)


MAX_TAGS = 80  # Keystone's limit of tags per project


def checked_tags(tags):
    """A project's tags as Keystone takes them: at most 80 strings of 1 to
    255 characters without '/' or ',' (they would not survive the URL of
    one tag or a ?tags= filter); repeats count once."""
    if not isinstance(tags, list):
        raise serializers.ValidationError("Expected a list of tags.")
    if len(tags) > MAX_TAGS:
        raise serializers.ValidationError(f"A project has at most {MAX_TAGS} tags.")
    for tag in tags:
        if not isinstance(tag, str) or not 1 <= len(tag) <= 255 or "/" in tag or "," in tag:
            raise serializers.ValidationError(f"{tag!r} is not a tag: 1 to 255 characters, without '/' or ','.")
    return list(dict.fromkeys(tags))


def domain_field():
    return ReferenceField("domain", source="domain", queryset=Domain.objects.all(), default=default_domain)


class DomainSerializer(IdentitySerializer):
    route = "identity:domain-detail"
    name = serializers.CharField(max_length=SHORT_NAME_LENGTH)
    tags = serializers.SerializerMethodField()
    options = serializers.SerializerMethodField()

    class Meta:
        model = Domain
        fields = ["id", "name", "description", "enabled", "tags", "options", "links"]
        read_only_fields = ["id"]

    def get_tags(self, obj):
        return []

    def get_options(self, obj):
        return {}


class ProjectSerializer(IdentitySerializer):
    route = "identity:project-detail"
    name = serializers.CharField(max_length=SHORT_NAME_LENGTH)
    domain_id = domain_field()
    parent_id = ReferenceField("project", source="parent", queryset=Project.objects.all(), required=False,
                               allow_null=True)
    tags = serializers.JSONField(required=False)
    is_domain = serializers.SerializerMethodField()
    options = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "name", "domain_id", "parent_id", "description", "enabled", "is_domain", "tags",
                  "options", "links"]
        read_only_fields = ["id"]

    def get_is_domain(self, obj):
        return False

    def get_options(self, obj):
        return {}

    def to_representation(self, instance):
        data = super().to_representation(instance)
        # Keystone shows a top-level project's parent as its domain.
        data["parent_id"] = data["parent_id"] or instance.domain_id
        return data

    def validate_tags(self, tags):
        return checked_tags(tags)

    def validate(self, attrs):
        parent = attrs.get("parent")
        domain = attrs.get("domain") or getattr(self.instance, "domain", None)
        if parent is not None and domain is not None and parent.domain_id != domain.id:
            raise serializers.ValidationError({"parent_id": "The parent project is in another domain."})
        if self.instance is not None and "domain" in attrs and attrs["domain"].id != self.instance.domain_id:
            raise serializers.ValidationError({"domain_id": "A project cannot move to another domain."})
        if self.instance is not None and parent is not None:
            problem = self.instance.cannot_have_parent(parent)
            if problem:
                raise serializers.ValidationError({"parent_id": problem})
        return attrs

    def update(self, instance, validated):
        try:
            return super().update(instance, validated)
        except DjangoValidationError as error:  # a move that became a cycle since validate() (Project.save)
            raise serializers.ValidationError({"parent_id": error.message_dict["parent"][0]})


class UserSerializer(IdentitySerializer):
    route = "identity:user-detail"
    domain_id = domain_field()
    default_project_id = serializers.PrimaryKeyRelatedField(
        source="default_project", queryset=Project.objects.all(), required=False, allow_null=True)
    password = serializers.CharField(write_only=True, required=False, allow_null=True, max_length=4096)
    options = serializers.JSONField(required=False)

    class Meta:
        model = User
        fields = ["id", "name", "domain_id", "enabled", "default_project_id", "password", "password_expires_at",
                  "email", "description", "options", "links"]
        read_only_fields = ["id", "password_expires_at"]

    def validate_options(self, options):
        return user_options.merged(getattr(self.instance, "options", None), user_options.checked(options))

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["options"] = dict(instance.options or {})
        # As Keystone: a user refused for inactivity shows as disabled.
        data["enabled"] = data["enabled"] and not security_compliance.inactive(instance)
        return data

    def _prepare(self, validated):
        options = validated.get("options", getattr(self.instance, "options", None))
        if "password" in validated:
            validated.update(security_compliance.admin_set_fields(validated.pop("password"), options))
        if validated.get("enabled") is True:
            # Enabling a user (again) starts their inactivity count afresh, as in Keystone.
            validated["last_active_at"] = dj_timezone.localdate()
        return validated

    def create(self, validated):
        validated.setdefault("last_active_at", dj_timezone.localdate())
        user = super().create(self._prepare(validated))
        security_compliance.remember(user)
        return user

    def update(self, instance, validated):
        changes_password = "password" in validated
        user = super().update(instance, self._prepare(validated))
        if changes_password:
            security_compliance.remember(user)
        return user


class GroupSerializer(IdentitySerializer):
    route = "identity:group-detail"
    domain_id = domain_field()

    class Meta:
        model = Group
        fields = ["id", "name", "domain_id", "description", "links"]
        read_only_fields = ["id"]


class RoleSerializer(IdentitySerializer):
    route = "identity:role-detail"
    domain_id = serializers.PrimaryKeyRelatedField(
        source="domain", queryset=Domain.objects.all(), required=False, allow_null=True)
    options = serializers.SerializerMethodField()

    class Meta:
        model = Role
        fields = ["id", "name", "domain_id", "description", "options", "links"]
        read_only_fields = ["id"]

    def get_options(self, obj):
        return {}


class RegionSerializer(IdentitySerializer):
    route = "identity:region-detail"
    id = serializers.CharField(max_length=255, required=False)
    parent_region_id = serializers.PrimaryKeyRelatedField(
        source="parent_region", queryset=Region.objects.all(), required=False, allow_null=True)

    class Meta:
        model = Region
        fields = ["id", "description", "parent_region_id", "links"]

    def create(self, validated):
        from identity.models import new_id

        validated.setdefault("id", new_id())
        return super().create(validated)

    def update(self, instance, validated):
        validated.pop("id", None)
        return super().update(instance, validated)


class ServiceSerializer(IdentitySerializer):
    route = "identity:service-detail"

    class Meta:
        model = Service
        fields = ["id", "type", "name", "description", "enabled", "links"]
        read_only_fields = ["id"]


class EndpointSerializer(IdentitySerializer):
    route = "identity:endpoint-detail"
    service_id = serializers.PrimaryKeyRelatedField(source="service", queryset=Service.objects.all())
    region_id = serializers.PrimaryKeyRelatedField(
        source="region", queryset=Region.objects.all(), required=False, allow_null=True)
    region = serializers.SerializerMethodField()

    class Meta:
        model = Endpoint
        fields = ["id", "service_id", "interface", "region_id", "region", "url", "enabled", "links"]
        read_only_fields = ["id"]

    def get_region(self, obj):
        return obj.region_id

    def to_internal_value(self, data):
        # Older clients send the region as `region`: as Keystone does, a
        # region named so that does not exist yet is made with the endpoint
        # (region_id must name one that exists).
        new_region = None
        if isinstance(data, dict) and data.get("region") is not None and data.get("region_id") is None:
            data = {**data, "region_id": data["region"]}
            if isinstance(data["region"], str) and data["region"] and \
                    not Region.objects.filter(id=data["region"]).exists():
                new_region = data.pop("region_id")
        validated = super().to_internal_value(data)
        if new_region is not None:
            validated["new_region_id"] = new_region
        return validated

    def _with_region(self, validated):
        if "new_region_id" in validated:
            validated["region"], _ = Region.objects.get_or_create(id=validated.pop("new_region_id"))
        return validated

    def create(self, validated):
        return super().create(self._with_region(validated))

    def update(self, instance, validated):
        return super().update(instance, self._with_region(validated))


class RoleRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Role
        fields = ["id", "name", "domain_id"]


def access_rule_body(rule):
    return {"id": rule.id, "service": rule.service, "method": rule.method, "path": rule.path}


class AccessRuleSerializer(serializers.ModelSerializer):
    links = serializers.SerializerMethodField()

    class Meta:
        model = AccessRule
        fields = ["id", "service", "method", "path", "links"]

    def get_links(self, obj):
        request = self.context["request"]
        path = reverse("identity:access-rule-detail", args=[obj.user_id, obj.pk])
        return {"self": request.build_absolute_uri(path)}


class ApplicationCredentialSerializer(IdentitySerializer):
    route = None
    roles = RoleRefSerializer(many=True, read_only=True)
    project_id = serializers.CharField(read_only=True)
    user_id = serializers.CharField(read_only=True)
    access_rules = serializers.SerializerMethodField()
    # Keystone shows the expiry as it was given: UTC without a zone suffix.
    expires_at = serializers.DateTimeField(format="%Y-%m-%dT%H:%M:%S.%f", default_timezone=timezone.utc,
                                           read_only=True)

    class Meta:
        model = ApplicationCredential
        fields = ["id", "name", "description", "user_id", "project_id", "expires_at", "unrestricted", "roles",
                  "access_rules", "links"]
        read_only_fields = ["id"]

    def get_access_rules(self, obj):
        return [access_rule_body(rule) for rule in obj.access_rules.all()]

    def get_links(self, obj):
        request = self.context["request"]
        path = reverse("identity:application-credential-detail", args=[obj.user_id, obj.pk])
        return {"self": request.build_absolute_uri(path)}


class CredentialSerializer(IdentitySerializer):
    """A credential as Keystone shows it; what is written is checked by
    CredentialBodySerializer and identity.credentials."""

    route = "identity:credential-detail"
    user_id = serializers.CharField(read_only=True)
    project_id = serializers.CharField(read_only=True)

    class Meta:
        model = Credential
        fields = ["id", "type", "blob", "user_id", "project_id", "links"]
        read_only_fields = fields


class CredentialBodySerializer(serializers.Serializer):
    """Keystone's credential schema: blob, type and user_id required on
    create, project_id optional (identity.credentials requires it for ec2)."""

    blob = serializers.CharField(trim_whitespace=False)
    type = serializers.CharField(max_length=255, trim_whitespace=False)
    user_id = serializers.CharField(max_length=64)
    project_id = serializers.CharField(max_length=64, required=False, allow_null=True)


class PolicySerializer(IdentitySerializer):
    route = "identity:policy-detail"
    blob = serializers.CharField(trim_whitespace=False)
    type = serializers.CharField(max_length=255)

    class Meta:
        model = Policy
        fields = ["id", "type", "blob", "links"]
        read_only_fields = ["id"]
