"""Domain configuration (Keystone's domain-specific identity drivers): the
`identity` and `ldap` options an admin may set per domain, kept and
validated as Keystone keeps them. Stratus's identity is its own database
for every domain; the options are stored for the tools that read and write
them, and no LDAP server is ever contacted."""
from django.db import transaction

from cloud.errors import BadRequest, Forbidden, NotFound
from identity.models import DomainConfigOption

# The options Keystone lets a domain set, and their defaults there
# (GET /v3/domains/config/default); `identity.driver` is Stratus's own.
DEFAULTS = {
    "identity": {"driver": "sql", "list_limit": None},
    "ldap": {
        "url": "ldap://localhost", "user": None, "suffix": "cn=example,cn=com", "query_scope": "one",
        "page_size": 0, "alias_dereferencing": "default", "debug_level": None, "chase_referrals": None,
        "user_tree_dn": None, "user_filter": None, "user_objectclass": "inetOrgPerson",
        "user_id_attribute": "cn", "user_name_attribute": "sn", "user_mail_attribute": "mail",
        "user_description_attribute": "description", "user_pass_attribute": "userPassword",
        "user_enabled_attribute": "enabled", "user_enabled_invert": False, "user_enabled_mask": 0,
        "user_enabled_default": "True", "user_attribute_ignore": ["default_project_id"],
        "user_default_project_id_attribute": None, "user_enabled_emulation": False,
        "user_enabled_emulation_dn": None, "user_enabled_emulation_use_group_config": False,
        "user_additional_attribute_mapping": [], "group_tree_dn": None, "group_filter": None,
        "group_objectclass": "groupOfNames", "group_id_attribute": "cn", "group_name_attribute": "ou",
        "group_members_are_ids": False, "group_member_attribute": "member", "group_desc_attribute": "description",
        "group_attribute_ignore": [], "group_additional_attribute_mapping": [], "tls_cacertfile": None,
        "tls_cacertdir": None, "use_tls": False, "tls_req_cert": "demand", "use_pool": True, "pool_size": 10,
        "pool_retry_max": 3, "pool_retry_delay": 0.1, "pool_connection_timeout": -1,
        "pool_connection_lifetime": 600, "use_auth_pool": True, "auth_pool_size": 100,
        "auth_pool_connection_lifetime": 60,
    },
}
# Stored, but never shown (nor has a default to show).
SENSITIVE = {"identity": (), "ldap": ("password",)}


def check_group_and_option(group=None, option=None):
    """Keystone's InvalidDomainConfig (a 403) for a group or option a
    domain cannot set."""
    if group is not None and group not in DEFAULTS:
        raise Forbidden(f"Invalid domain specific configuration: group {group} is not supported for domain "
                        f"specific configurations.")
    if option is not None and option not in DEFAULTS[group] and option not in SENSITIVE[group]:
        raise Forbidden(f"Invalid domain specific configuration: option {option} in group {group} is not "
                        f"supported for domain specific configurations.")


def _checked(config):
    """A request's {"group": {"option": value}} config, every group and option allowed."""
    if not isinstance(config, dict) or not config:
        raise BadRequest("Invalid input for field 'config': expected an object of groups of options.")
    for group, options in config.items():
        if not isinstance(options, dict) or not options:
            raise BadRequest(f"Invalid input for field 'config.{group}': the value of a group must be an object "
                             f"of options.")
        for option in options:
            check_group_and_option(group, option)
    return config


def body_config(data):
    if not isinstance(data, dict) or "config" not in data:
        raise BadRequest("Invalid input for field 'config': the request body must be {\"config\": {...}}.")
    return data["config"]


def shown(domain, group=None, option=None, missing_ok=False):
    """The domain's stored options, sensitive ones left out, as Keystone
    shows them: {group: {option: value}}, or {option: value} for one
    option; 404 when none match (unless missing_ok: {})."""
    check_group_and_option(group, option)
    rows = DomainConfigOption.objects.filter(domain=domain, sensitive=False)
    if group:
        rows = rows.filter(group=group)
    if option:
        rows = rows.filter(option=option)
    config = {}
    for row in rows:
        config.setdefault(row.group, {})[row.option] = row.value
    if not config and missing_ok:
        return config
    if not config:
        what = f"option {option} in group {group}" if option else f"group {group}" if group else "any options"
        raise NotFound(f"Could not find {what} in domain configuration for domain {domain.id}.")
    return config[group] if option else config


def _write(domain, config):
    for group, options in config.items():
        for option, value in options.items():
            DomainConfigOption.objects.update_or_create(
                domain=domain, group=group, option=option,
                defaults={"value": value, "sensitive": option in SENSITIVE[group]})


def replace(domain, config):
    """PUT: the domain's whole configuration becomes `config`. True when
    it had none before."""
    _checked(config)
    with transaction.atomic():
        existed = DomainConfigOption.objects.filter(domain=domain).exists()
        DomainConfigOption.objects.filter(domain=domain).delete()
        _write(domain, config)
    return not existed


def update(domain, config, group=None, option=None):
    """PATCH: merges `config` into the domain's; with a group (and an
    option) in the path, only that group (option), which must be set."""
    if group and option:
        config = {group: config} if isinstance(config, dict) else config
    _checked(config)
    check_group_and_option(group, option)
    if group:
        if list(config) != [group]:
            raise Forbidden(f"Invalid domain specific configuration: trying to update group {group}, so that, and "
                            f"only that, group must be specified in the config.")
        if option and list(config[group]) != [option]:
            raise Forbidden(f"Invalid domain specific configuration: trying to update option {option} in group "
                            f"{group}, so that, and only that, option must be specified in the config.")
        stored = DomainConfigOption.objects.filter(domain=domain, group=group)
        if option:
            stored = stored.filter(option=option)
        if not stored.exists():
            what = f"option {option} in group {group}" if option else f"group {group}"
            raise NotFound(f"Could not find {what} in domain configuration for domain {domain.id}.")
    with transaction.atomic():
        _write(domain, config)


def delete(domain, group=None, option=None):
    check_group_and_option(group, option)
    rows = DomainConfigOption.objects.filter(domain=domain)
    if group:
        rows = rows.filter(group=group)
    if option:
        rows = rows.filter(option=option)
    if group and not rows.exists():
        what = f"option {option} in group {group}" if option else f"group {group}"
        raise NotFound(f"Could not find {what} in domain configuration for domain {domain.id}.")
    rows.delete()


def defaults(group=None, option=None):
    check_group_and_option(group, option)
    if option:
        if option not in DEFAULTS[group]:
            raise Forbidden(f"Invalid domain specific configuration: reading the default for option {option} in "
                            f"group {group} is not supported.")
        return {option: DEFAULTS[group][option]}
    if group:
        return {group: dict(DEFAULTS[group])}
    return {name: dict(options) for name, options in DEFAULTS.items()}
