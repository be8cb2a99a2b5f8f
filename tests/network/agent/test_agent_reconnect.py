"""The node agent when its broker comes back: what changed while the
broker was away (its messages never reached the agent) is converged at
once, not at the next periodic resync. The agent's broker is a Redis of
the test's own, stopped and started under it; the API publishes to the
test cloud's broker, which the agent does not consume, so only the
agent's own resync can make what the database says."""
import os
import uuid
from dataclasses import replace

import pytest

from network.agent import firewall, iplib
from network.agent import resources as kernel
from tests.private_redis import PrivateRedis

from .test_node import AgentProcess, admin, bound_port, live_db, wait_until  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the agent needs root (namespaces, bridges)")


def test_the_agent_resyncs_at_once_when_its_broker_connection_comes_back(lab, live_db, admin, tmp_path):  # noqa: F811
    from workers import queues
    from workers.celery import app

    redis_server = PrivateRedis(tmp_path)
    redis_server.start()
    name = f"rc{uuid.uuid4().hex[:6]}"
    host = replace(lab.host(underlay_number=1), name=name)
    # A period far longer than the test: only the broker's return resyncs.
    agent = AgentProcess(name, host, tmp_path / "agent.log", "--no-dhcp", "--no-l3", "--resync-interval", "3600",
                         env={"STRATUS_BROKER_URL": redis_server.url})
    network = None
    try:
        agent.start()
        redis_server.stop()
        wait_until(lambda: "Cannot connect to redis" in agent.output() or "Connection refused" in agent.output(),
                   timeout=30, message="the agent to notice its broker gone")

        network = admin.network()
        admin.subnet(network, "10.79.0.0/24")
        port = bound_port(admin, network, name, [])
        bridge = kernel.bridge_name(network["id"])

        def plumbed():
            with iplib.ip(host.namespace) as handle:
                present = {link["name"] for link in iplib.links(handle)}
            return bridge in present and port["id"] in firewall.owned_ports(host)

        assert not plumbed()   # the agent has not seen the port: its broker is away
        redis_server.start()
        wait_until(plumbed, timeout=60, message="the agent to converge once its broker is back")
        assert "broker connection restored" in agent.output()
    finally:
        if agent.process is not None:
            agent.kill()
        if redis_server.answers():
            redis_server.stop()
        if network is not None:
            for listed in admin.get("ports", params={"network_id": network["id"]}).json()["ports"]:
                admin.delete(f"ports/{listed['id']}")
            admin.delete(f"networks/{network['id']}")
        # Nobody consumes the host's queue on the test cloud's broker.
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge(queues.network(name))
