"""CPU used during a phase, from /proc: the whole machine, our services by role, our PostgreSQL backends."""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field

import psycopg2


def connect(url: str):
    connection = psycopg2.connect(url)
    connection.autocommit = True
    return connection


@dataclass
class CpuUsage:
    """Cores used between two readings: the machine's busy total and ours by role; the rest is other load."""

    wall: float
    machine: float
    roles: dict[str, float]
    others: list[tuple[str, float]] = field(default_factory=list)  # the busiest processes that are not ours

    @property
    def other(self) -> float:
        return max(0.0, self.machine - sum(self.roles.values()))

    def ms_per_session(self, sessions: int) -> dict[str, float]:
        return {role: 1000 * cores * self.wall / sessions for role, cores in self.roles.items()}

    def describe(self) -> str:
        parts = ", ".join(f"{role} {cores:.2f}" for role, cores in sorted(self.roles.items(), key=lambda r: -r[1]))
        busiest = ", ".join(f"{name} {cores:.2f}" for name, cores in self.others if cores >= 0.05)
        return (f"{self.machine:.2f} of {os.cpu_count()} cores busy over {self.wall:.0f}s: {parts}, "
                f"rest of the machine {self.other:.2f}" + (f" (busiest: {busiest})" if busiest else ""))


class CpuMeter:
    """CPU time from /proc: the whole machine, this process ("bench client"), the process groups of our
    services, and the PostgreSQL backends of our database (exited processes' time is lost: small here)."""

    def __init__(self, groups: dict[str, int], database_url: str | None = None):
        self._roles_by_group = {pgid: role for role, pgid in groups.items()}
        self._connection = connect(database_url) if database_url else None
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._started, self._machine, self._processes = self._read()

    def _read(self) -> tuple[float, float, dict[int, tuple[str, float, bool]]]:
        with open("/proc/stat") as stat:
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, stat.readline().split()[1:9])
        machine = (user + nice + system + irq + softirq + steal) / self._ticks
        backends: set[int] = set()
        if self._connection is not None:
            with self._connection.cursor() as cursor:
                cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
                backends = {pid for (pid,) in cursor.fetchall()}
        processes = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    text = stat.read()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2:].split()
            pgrp, cpu = int(fields[2]), (int(fields[11]) + int(fields[12])) / self._ticks
            if pid == os.getpid():
                processes[pid] = ("bench client", cpu, True)
            elif pgrp in self._roles_by_group:
                processes[pid] = (self._roles_by_group[pgrp], cpu, True)
            elif pid in backends:
                processes[pid] = ("postgres (our db)", cpu, True)
            else:
                processes[pid] = (f"{text[text.index('(') + 1:text.rindex(')')]}[{pid}]", cpu, False)
        return time.perf_counter(), machine, processes

    def usage(self) -> CpuUsage:
        now, machine, processes = self._read()
        if self._connection is not None:
            self._connection.close()
        wall = now - self._started
        roles: Counter = Counter()
        others: Counter = Counter()
        for pid, (role, cpu, ours) in processes.items():
            before = self._processes.get(pid)
            used = cpu - (before[1] if before and before[0] == role else 0.0)
            (roles if ours else others)[role] += used
        return CpuUsage(wall, (machine - self._machine) / wall, {role: t / wall for role, t in roles.items()},
                        [(name, t / wall) for name, t in others.most_common(3)])

