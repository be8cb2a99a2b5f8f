"""Runs a node worker: the agent and a Celery worker consuming
compute.<host> and network.<host> for one real node, or for N simulated ones in one process.

    manage.py nodeworker                                  # this host, qemu:///system
    manage.py nodeworker --host node1 --uri qemu:///system
    manage.py nodeworker --simulate 50 --prefix sim-      # hosts sim-1 ... sim-50

A simulated node is libvirt's test driver with its own state (a
test:///<file> URI, one long-lived connection per node), with the
capacity of STRATUS_SIMULATED_VCPUS / _MEMORY_MB / _DISK_GB. The worker
runs a threads pool, so every task for a node uses that node's one
connection and sees its domains."""
import logging
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from compute.node import agent, conf
from compute.virt import get_driver
from compute.virt.libvirt_driver import write_simulated_node
from network import conf as network_conf
from network.agent import node as network_agent
from workers import broker, queues

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the node worker of a compute node (or of N simulated nodes)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.HOSTNAME,
                            help="the node's host name, its identity and queue (default: this host's)")
        parser.add_argument("--uri", default="qemu:///system", help="libvirt URI of the hypervisor")
        parser.add_argument("--simulate", type=int, metavar="N",
                            help="run N simulated nodes on libvirt's test driver instead")
        parser.add_argument("--prefix", default="sim-",
                            help="simulated nodes are named <prefix>1 ... <prefix>N (default sim-)")
        parser.add_argument("--concurrency", type=int,
                            help="tasks run at once (threads; default 4, or 8 when simulating)")
        parser.add_argument("--my-ip", default=conf.MY_IP,
                            help="the node's management address, where its guests' VNC servers listen for the "
                                 f"console proxy (default STRATUS_MY_IP or {conf.MY_IP})")
        parser.add_argument("--loglevel", default="INFO")

    def handle(self, *args, host, uri, simulate, prefix, concurrency, loglevel, my_ip, **options):
        if simulate is not None and simulate < 1:
            raise CommandError("--simulate needs at least 1 node")
        nodes = self.simulated_nodes(prefix, simulate, my_ip) if simulate else [
            agent.Node(host, get_driver(uri, instances_dir=conf.NODES_DIR / host), my_ip=my_ip)]
        # Each node's compute.<host> and network.<host> queues.
        node_queues = [queue for node in nodes for queue in (queues.compute(node.host), queues.network(node.host))]
        broker.requeue_unacknowledged(node_queues)
        for node in nodes:
            node.start()
            agent.NODES[node.host] = node
        self.stdout.write(f"serving {len(nodes)} node(s): {', '.join(n.host for n in nodes[:5])}"
                          f"{' ...' if len(nodes) > 5 else ''} ({nodes[0].driver.uri.split(':')[0]}, "
                          f"domain type {nodes[0].driver.virt_type})")
        background = agent.Agent(nodes)
        background.start()
        # The node's network agent serves its network.<host> queue in this
        # worker (bridges, VXLAN, DHCP, rules, routers; or, for simulated
        # nodes, ports only reported), with its own heartbeats.
        if simulate:
            network_agents = network_agent.serve_simulated([node.host for node in nodes])
        else:
            host = nodes[0].host
            kernel = network_agent.kernel_host(host, local_ip=network_conf.TUNNEL_IP_SETTING or my_ip,
                                               state_dir=network_conf.AGENT_STATE_DIR / host)
            network_agents = [network_agent.serve(host, kernel,
                                                  physical_interfaces=network_conf.PHYSICAL_INTERFACE_MAPPINGS)]
        reporting_stopped = threading.Event()
        network_agent.keep_reporting(network_agents, network_conf.AGENT_REPORT_INTERVAL, reporting_stopped)
        network_agent.keep_resyncing(network_agents, network_conf.AGENT_RESYNC_INTERVAL, reporting_stopped)

        from workers.celery import app

        worker_name = f"node@{prefix if simulate else host}"
        try:
            app.worker_main([
                "worker", "--queues", ",".join(node_queues),
                "--hostname", worker_name, "--pool", "threads",
                "--concurrency", str(concurrency or (8 if simulate else 4)),
                "--without-gossip", "--without-mingle", "--loglevel", loglevel,
            ])
        finally:
            reporting_stopped.set()
            background.stop()
            for node in nodes:
                node.driver.close()

    @staticmethod
    def simulated_nodes(prefix, count, my_ip):
        nodes = []
        for index in range(1, count + 1):
            host = f"{prefix}{index}"
            node_file = write_simulated_node(conf.NODES_DIR / host / "hypervisor.xml",
                                             vcpus=conf.SIMULATED_VCPUS, memory_mb=conf.SIMULATED_MEMORY_MB)
            driver = get_driver(f"test://{node_file}", disk_gb=conf.SIMULATED_DISK_GB)
            nodes.append(agent.Node(host, driver, simulated=True, my_ip=my_ip))
        return nodes
