"""What the benchmarks measure the same way: percentiles and the CPU time
of the processes they start."""
import os
from pathlib import Path


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[max(0, int(round(len(ordered) * fraction)) - 1)]


def cpu_seconds(processes):
    """{name: CPU seconds} of each process (pid) with its descendants, live
    or reaped; empty when the processes are not this run's."""
    ticks = os.sysconf("SC_CLK_TCK")

    def of(pid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            children = [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
                        for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            return 0.0
        # utime, stime, cutime, cstime: fields 14 to 17 of stat.
        return sum(int(value) for value in fields[11:15]) / ticks + sum(of(child) for child in children)

    return {name: of(pid) for name, pid in (processes or {}).items()}
