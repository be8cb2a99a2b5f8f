"""Picks a compute node for an instance and claims its resources there.
`manager.schedule(instance)` is the entry point; filters and weighers are
one small class each (filters.py, weights.py)."""
