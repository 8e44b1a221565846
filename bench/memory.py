"""Peak memory of our services, from /proc: each process's VmHWM, and the peak of their summed RSS.

VmHWM is the kernel's own high-water mark of a process's resident memory, so a process that
lives to the end of the run reports its true peak however rarely we look. Processes that exit
mid-run (a recycled worker, a closed PostgreSQL backend) are caught by sampling every
``interval`` seconds: the last VmHWM read before they went is kept. The summed RSS of a role,
sampled at the same moments, is the simultaneous peak (VmHWM summed over processes is an upper
bound: their peaks need not coincide). Resident memory counts shared pages (a PostgreSQL backend's
share of ``shared_buffers``, a forked worker's pages still shared with its parent) in every process
that touched them, so sums overcount what the machine spent; ``RssAnon`` (private) is kept too.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class ProcessPeak:
    pid: int
    name: str
    hwm_kb: int = 0
    anon_kb: int = 0  # the largest private resident memory seen


@dataclass
class RolePeak:
    """Every process seen in one role, and the largest sum of their RSS at one sampled moment."""

    processes: dict[int, ProcessPeak] = field(default_factory=dict)
    rss_sum_kb: int = 0

    @property
    def hwm_sum_kb(self) -> int:
        return sum(p.hwm_kb for p in self.processes.values())

    @property
    def anon_sum_kb(self) -> int:
        return sum(p.anon_kb for p in self.processes.values())


def _status(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/status") as status:
            return dict(line.rstrip("\n").split(":\t", 1) for line in status if ":\t" in line)
    except OSError:
        return {}


def _kb(value: str | None) -> int:
    return int(value.split()[0]) if value else 0


def _children() -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    text = stat.read()
            except OSError:
                continue
            parent = int(text[text.rindex(")") + 2:].split()[1])
            found.setdefault(parent, []).append(int(entry))
    return found


def process_tree(root: int, children: dict[int, list[int]] | None = None) -> list[int]:
    """``root`` and every descendant (gunicorn's workers, the consumer's worker processes)."""
    children = _children() if children is None else children
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack += children.get(pid, [])
    return tree


class MemorySampler(threading.Thread):
    """Samples, every ``interval`` seconds until stopped, the processes ``roles`` names.

    ``roles`` maps a role to a function returning its pids now (a process tree, the backends of a
    database), so processes that start later are seen too.
    """

    def __init__(self, roles: dict[str, Callable[[], list[int]]], interval: float = 0.5):
        super().__init__(name="memory-sampler", daemon=True)
        self.roles, self.interval = roles, interval
        self.peaks: dict[str, RolePeak] = {role: RolePeak() for role in roles}
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        while True:
            self.sample()
            if self._stop_event.wait(self.interval):
                break
        self.sample()

    def sample(self) -> None:
        for role, pids_of in self.roles.items():
            try:
                pids = pids_of()
            except Exception:  # a database gone at the end of the run: keep what was seen
                continue
            rss_sum = 0
            with self._lock:
                peak = self.peaks[role]
                for pid in pids:
                    status = _status(pid)
                    if not status:
                        continue
                    seen = peak.processes.setdefault(pid, ProcessPeak(pid, status.get("Name", "?")))
                    seen.hwm_kb = max(seen.hwm_kb, _kb(status.get("VmHWM")))
                    seen.anon_kb = max(seen.anon_kb, _kb(status.get("RssAnon")))
                    rss_sum += _kb(status.get("VmRSS"))
                peak.rss_sum_kb = max(peak.rss_sum_kb, rss_sum)

    def stop(self) -> dict[str, RolePeak]:
        self._stop_event.set()
        self.join(timeout=10)
        return self.peaks


def tree_of(pid_of: Callable[[], int | None]) -> Callable[[], list[int]]:
    """A role's pids: the process tree under the pid ``pid_of`` gives (none once it is gone)."""

    def pids() -> list[int]:
        root = pid_of()
        return process_tree(root) if root else []

    return pids


def megabytes(kb: int) -> str:
    return f"{kb / 1024:,.0f} MB"
