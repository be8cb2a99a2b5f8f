"""Neutron's `agents`: the node agents' reports (Linux bridge, DHCP, L3 per
host), alive while their heartbeats come; administrators only. An operator
may disable one (admin_state_up false: no new network or router is given
to it) or delete the row of a host gone for good."""
from django.db import transaction
from rest_framework import serializers

from network import conf
from network.api.base import NeutronSerializer, NeutronViewSet, as_bool, as_uuid, policy_denied
from network.models import Agent

TIMESTAMP = "%Y-%m-%d %H:%M:%S"


def admins_only(rule):
    """A policy rule that admits admins only and refuses others as Neutron
    does, naming the rule."""
    def refuse(request, view):
        raise policy_denied(f"rule:{rule}")
    return refuse


POLICY = {"list": admins_only("get_agent"), "retrieve": admins_only("get_agent"),
          "update": admins_only("update_agent"), "partial_update": admins_only("update_agent"),
          "destroy": admins_only("delete_agent")}


class AgentUpdateSerializer(NeutronSerializer):
    name = project_id = tenant_id = None
    admin_state_up = serializers.BooleanField(required=False)


class AgentViewSet(NeutronViewSet):
    queryset = Agent.objects.all()
    serializer_class = update_serializer_class = AgentUpdateSerializer
    kind, member_name, collection_name = "Agent", "agent", "agents"
    tagged = False
    policy = POLICY
    http_method_names = ["get", "put", "delete", "head", "options"]
    COMMON_FILTERS = {"id": ("id", as_uuid), "description": "description"}
    COMMON_SORT_KEYS = {"id": "id", "host": "host", "agent_type": "agent_type", "binary": "binary",
                        "created_at": "created_at"}
    filters = {"agent_type": "agent_type", "host": "host", "binary": "binary", "topic": "topic",
               "admin_state_up": ("admin_state_up", as_bool)}
    default_sort = (("host", "asc"), ("agent_type", "asc"))

    def visible(self, queryset):
        return queryset

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        alive = self.request.query_params.getlist("alive")
        if alive:
            wanted = {as_bool(value, "alive") for value in alive}
            ids = [agent.pk for agent in queryset if agent.is_alive in wanted]
            queryset = queryset.filter(pk__in=ids)
        return queryset

    def render(self, agent, tags):
        zone = conf.AVAILABILITY_ZONE if agent.agent_type in (Agent.DHCP, Agent.L3) else None
        return {
            "id": str(agent.id), "agent_type": agent.agent_type, "binary": agent.binary, "topic": agent.topic,
            "host": agent.host, "admin_state_up": agent.admin_state_up, "alive": agent.is_alive,
            "availability_zone": zone, "description": agent.description or None,
            "configurations": agent.configurations, "resources_synced": None,
            "created_at": agent.created_at.strftime(TIMESTAMP), "started_at": agent.started_at.strftime(TIMESTAMP),
            "heartbeat_timestamp": agent.heartbeat_timestamp.strftime(TIMESTAMP),
        }

    def partial_update(self, request, *args, **kwargs):
        agent = self.get_object()
        values = self.validated(partial=True)
        with transaction.atomic():
            for name, value in values.items():
                setattr(agent, name, value)
            agent.save()
        return self.show(agent)

    def perform_destroy(self, agent):
        agent.delete()
