"""Nova's metadata service: what a guest reads from 169.254.169.254 (through
a metadata proxy, network.agent.metadata_proxy) and what the config drive
holds. Mounted at /metadata/ on the API server."""
