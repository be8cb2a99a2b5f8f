"""Host weighers, as Nova's: each gives a raw number per host, normalised
to 0..1 over the candidates, times its multiplier; the sum orders hosts.
A positive RAM multiplier spreads instances, a negative one packs them."""
from compute import conf


class Weigher:
    def multiplier(self):
        return 1.0

    def weigh(self, host, spec):
        return 0.0


class RAMWeigher(Weigher):
    def multiplier(self):
        return conf.RAM_WEIGHT_MULTIPLIER

    def weigh(self, host, spec):
        return host.memory_mb * host.ram_allocation_ratio - host.memory_mb_used


class CPUWeigher(Weigher):
    def multiplier(self):
        return conf.CPU_WEIGHT_MULTIPLIER

    def weigh(self, host, spec):
        return host.vcpus * host.cpu_allocation_ratio - host.vcpus_used


WEIGHERS = (RAMWeigher(), CPUWeigher())


def normalise(values):
    low, high = min(values), max(values)
    if high == low:
        return [0.0 for _ in values]
    return [(value - low) / (high - low) for value in values]


def order_hosts(hosts, spec):
    """Hosts best first."""
    totals = [0.0] * len(hosts)
    for weigher in WEIGHERS:
        multiplier = weigher.multiplier()
        if not multiplier or not hosts:
            continue
        for index, weight in enumerate(normalise([weigher.weigh(host, spec) for host in hosts])):
            totals[index] += multiplier * weight
    ranked = sorted(zip(totals, range(len(hosts))), key=lambda pair: (-pair[0], hosts[pair[1]].host))
    return [hosts[index] for _, index in ranked]
