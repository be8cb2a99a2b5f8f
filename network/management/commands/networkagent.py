"""Runs a node's network agent: registers it (Linux bridge, and DHCP and L3
on a network node), resyncs the kernel to the database, then converges
what the API says changed, from a Celery worker on network.<host>, with a
heartbeat thread and a periodic resync.

    manage.py networkagent --host node1 --local-ip 10.0.0.11
    manage.py networkagent --host node2 --no-dhcp --no-l3      # a compute-only node
    manage.py networkagent --host h1 --namespace h1ns ...      # a host played by a namespace (tests)
"""
import logging
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from network import conf
from network.agent import node
from workers import broker, queues

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the network agent of a node (bridges, VXLAN, DHCP, routers, security groups)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.HOSTNAME, help="the node's host name (its queue)")
        parser.add_argument("--namespace", help="the network namespace that plays the host (default: this one)")
        parser.add_argument("--local-ip", default=conf.TUNNEL_IP,
                            help="the VXLAN underlay address (default STRATUS_TUNNEL_IP, else STRATUS_MY_IP)")
        parser.add_argument("--underlay-interface", help="the interface holding --local-ip (default: found)")
        parser.add_argument("--state-dir", default=str(conf.AGENT_STATE_DIR / "%(host)s"),
                            help="where DHCP files and router markers live")
        parser.add_argument("--physical-interface", action="append", default=[], metavar="PHYSNET:INTERFACE",
                            help="a flat physical network's interface (repeatable; default "
                                 "STRATUS_PHYSICAL_INTERFACE_MAPPINGS)")
        parser.add_argument("--no-dhcp", action="store_true", help="serve no DHCP (not a network node)")
        parser.add_argument("--no-l3", action="store_true", help="host no routers (not a network node)")
        parser.add_argument("--report-interval", type=float, default=conf.AGENT_REPORT_INTERVAL,
                            help="seconds between heartbeats")
        parser.add_argument("--resync-interval", type=float, default=conf.AGENT_RESYNC_INTERVAL,
                            help="seconds between full resyncs of the kernel to the database")
        parser.add_argument("--concurrency", type=int, default=4)
        parser.add_argument("--loglevel", default="INFO")

    def handle(self, *args, host, namespace, local_ip, underlay_interface, state_dir, physical_interface,
               no_dhcp, no_l3, report_interval, resync_interval, concurrency, loglevel, **options):
        mappings = dict(conf.PHYSICAL_INTERFACE_MAPPINGS)
        mappings.update(dict(item.split(":", 1) for item in physical_interface))
        kernel = node.kernel_host(host, namespace=namespace, underlay_interface=underlay_interface, local_ip=local_ip,
                                  state_dir=Path(state_dir % {"host": host}))
        queue = queues.network(host)
        broker.requeue_unacknowledged([queue])
        agent = node.serve(host, kernel, dhcp=not no_dhcp, l3=not no_l3, physical_interfaces=mappings,
                           report_interval=report_interval)
        self.stdout.write(f"network agent of {host}: {', '.join(agent.agent_types())}")
        stopping = threading.Event()
        node.keep_reporting([agent], report_interval, stopping)
        node.keep_resyncing([agent], resync_interval, stopping)
        from workers.celery import app

        try:
            app.worker_main(["worker", "--queues", queue, "--hostname", f"network@{host}", "--pool", "threads",
                             "--concurrency", str(concurrency), "--without-gossip", "--without-mingle",
                             "--loglevel", loglevel])
        finally:
            stopping.set()
