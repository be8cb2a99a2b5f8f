"""Helpers for the Networking v2.0 tests: tokens of the admin and demo
projects and a client that speaks Neutron's envelopes."""
import uuid

import pytest


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def tokens(cloud):
    return {"admin": cloud.token("stratus"), "demo": cloud.token("stratus-demo")}


class Neutron:
    """requests to /network/v2.0 as one caller."""

    def __init__(self, api, token):
        self.api, self.token = api, token

    def get(self, path, **kwargs):
        return self.api.get(f"/network/v2.0/{path}", token=self.token, **kwargs)

    def post(self, path, body, **kwargs):
        return self.api.post(f"/network/v2.0/{path}", token=self.token, json=body, **kwargs)

    def put(self, path, body=None, **kwargs):
        return self.api.put(f"/network/v2.0/{path}", token=self.token, json=body, **kwargs)

    def delete(self, path, **kwargs):
        return self.api.delete(f"/network/v2.0/{path}", token=self.token, **kwargs)

    def create(self, collection, member, **attributes):
        response = self.post(collection, {member: attributes})
        assert response.status_code == 201, response.text
        return response.json()[member]

    def network(self, **attributes):
        return self.create("networks", "network", name=attributes.pop("name", unique("net")), **attributes)

    def subnet(self, network, cidr, **attributes):
        return self.create("subnets", "subnet", network_id=network["id"], cidr=cidr, ip_version=4, **attributes)

    def port(self, network, **attributes):
        return self.create("ports", "port", network_id=network["id"], **attributes)


@pytest.fixture
def admin(api, tokens):
    return Neutron(api, tokens["admin"])


@pytest.fixture
def demo(api, tokens):
    return Neutron(api, tokens["demo"])


def neutron_error(response, status, kind):
    """The NeutronError body of a response, checked for status and type."""
    assert response.status_code == status, response.text
    error = response.json()["NeutronError"]
    assert set(error) == {"type", "message", "detail"}
    assert error["type"] == kind, error
    return error["message"]
