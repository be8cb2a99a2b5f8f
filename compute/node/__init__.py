"""The node agent: what runs on every compute node. It registers the node,
reports its capacity on a heartbeat, reconciles instances with the
hypervisor at start and periodically, and runs the compute.<host> tasks
(`compute.node.tasks`). `manage.py nodeworker` starts it."""
