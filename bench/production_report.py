"""What ``bench.production`` measured, and its report: the figures, the memory and CPU by role, the checks,
and each figure beside its target."""

from __future__ import annotations

import argparse
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.ingest.cpu import CpuUsage
from bench.memory import RolePeak, megabytes
from bench.targets import Verdict, print_verdicts, spread_ms
from bench.trickle import TrickleFigures
from engine.terminal import print_table

TARGET_SECONDS = 300.0  # for the full volume; a --scale run scales it
TARGET_IDLE_VISIBLE_SECONDS = 1.0  # bench.ingest's live target
PRD_LATENCY_SECONDS = 3600.0  # the PRD: insights within an hour of a session


@dataclass
class Load:
    """What the load phase measured."""

    sessions: int
    tutors: int
    accepted_seconds: float
    scored_seconds: float | None
    backfill_statuses: dict
    retries: int
    trickle: TrickleFigures


@dataclass
class Outcome:
    load: Load
    memory: dict[str, RolePeak]
    cpu: CpuUsage
    checks: list[tuple[str, bool]]


def rescore_summary(worker_log: Path, tutors: int) -> str:
    """How much rescoring the run took, from the worker's ``tutor_rescored`` lines: how often a tutor was
    rescored (on average and at most) and over how many days (a backfill in time order keeps reaching back).
    Unlike the wall time, these do not depend on what else loads the machine."""
    days, ms, per_tutor = [], [], Counter()
    for line in worker_log.read_text(errors="replace").splitlines():
        if "event=tutor_rescored" in line:
            fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
            days.append(int(fields.get("days", 0)))
            ms.append(float(fields.get("ms", 0)))
            per_tutor[fields.get("tutor_id")] += 1
    if not ms:
        return "rescores: none logged"
    return (f"rescores: {len(ms):,} ({len(ms) / max(tutors, 1):.1f} per tutor, at most {max(per_tutor.values())}), "
            f"{sum(days) / len(days):.0f} days recomputed and {sum(ms) / len(ms):.0f} ms each on average: "
            f"{sum(ms) / 1000:,.0f} s of worker time")


def cpu_seconds(cpu: CpuUsage, sessions: int) -> str:
    """CPU-seconds by role over the run, and per session: what the work cost, whatever else loads the machine."""
    return "CPU-seconds by role: " + ", ".join(
        f"{role} {cores * cpu.wall:,.0f} s ({1000 * cores * cpu.wall / sessions:.2f} ms a session)"
        for role, cores in sorted(cpu.roles.items(), key=lambda item: -item[1]) if cores * cpu.wall >= 0.5)


def report(args: argparse.Namespace, outcome: Outcome, work_dir: Path) -> int:
    load = outcome.load
    print(f"\nbench.production on {os.cpu_count()} cores: {load.sessions:,} sessions of {load.tutors:,} tutors "
          f"over {args.days} days (scale {args.scale:g}), POSTed in batches of {args.batch} by {args.clients} jobs; "
          f"tqs api x{args.api_workers}, tqs worker x{args.queue_workers}, PostgreSQL + private Redis, "
          f"TQS_EMAIL_POLICY={args.email_policy}; logs {work_dir}")
    print(f"backfill POSTs: {load.backfill_statuses}, retried {load.retries}; accepted in "
          f"{load.accepted_seconds:.1f}s ({load.sessions / load.accepted_seconds:,.0f}/s)")
    trickle = load.trickle
    print(f"live POSTs: {dict(trickle.posted)} by phase, statuses {dict(trickle.statuses)}, never visible "
          f"{trickle.never_visible}")
    rows = []
    for phase in ("load", "idle"):
        p50, p95, p99 = spread_ms(trickle.visible[phase])
        rows.append([phase, str(len(trickle.visible[phase])), f"{p50:,.0f}", f"{p95:,.0f}", f"{p99:,.0f}",
                     f"{1000 * max(trickle.visible[phase], default=float('nan')):,.0f}"])
    print_table([("live POST -> visible", "left"), ("n", "right"), ("p50 ms", "right"), ("p95 ms", "right"),
                 ("p99 ms", "right"), ("max ms", "right")], rows)
    print("\nPeak memory by role (VmHWM per process, summed; the peak of their RSS summed at one moment; private)")
    mem_rows = []
    for role, peak in outcome.memory.items():
        largest = max(peak.processes.values(), key=lambda p: p.hwm_kb, default=None)
        mem_rows.append([role, str(len(peak.processes)), megabytes(peak.hwm_sum_kb), megabytes(peak.rss_sum_kb),
                         megabytes(peak.anon_sum_kb),
                         f"{largest.name}[{largest.pid}] {megabytes(largest.hwm_kb)}" if largest else "-"])
    print_table([("role", "left"), ("processes", "right"), ("VmHWM sum", "right"), ("RSS sum peak", "right"),
                 ("private", "right"), ("largest process", "left")], mem_rows)
    for role, peak in outcome.memory.items():
        print(f"  {role}: " + ", ".join(f"{p.name}[{p.pid}] {megabytes(p.hwm_kb)}"
                                        for p in sorted(peak.processes.values(), key=lambda p: -p.hwm_kb)))
    if outcome.cpu:
        print(f"CPU over the run: {outcome.cpu.describe()}")
        print(cpu_seconds(outcome.cpu, load.sessions))
    print(rescore_summary(work_dir / "worker.log", load.tutors))
    for check, ok in outcome.checks:
        print(f"check: {check}: {'ok' if ok else 'FAILED'}")
    target = TARGET_SECONDS * args.scale
    scored = load.scored_seconds
    per_second_target = load.sessions / target
    load_p50, _, load_p99 = spread_ms(trickle.visible["load"])
    idle_p50, _, idle_p99 = spread_ms(trickle.visible["idle"])
    verdicts = [
        Verdict("wall time, first POST to every session scored", "timed out" if scored is None else f"{scored:.1f} s",
                f"< {target:.0f} s" + (" (300 s scaled)" if args.scale != 1 else ""),
                scored is not None and scored < target),
        Verdict("sessions scored per second", "-" if scored is None else f"{load.sessions / scored:,.0f}/s",
                f">= {per_second_target:,.0f}/s", scored is not None and load.sessions / scored >= per_second_target),
        Verdict("live POST -> visible during the load, p50 / p99", f"{load_p50 / 1000:.1f} s / {load_p99 / 1000:.1f} s",
                "p99 < 1 hour (PRD)", bool(trickle.visible["load"]) and load_p99 / 1000 < PRD_LATENCY_SECONDS),
        Verdict("live POST -> visible when idle, p50 / p99", f"{idle_p50:,.0f} ms / {idle_p99:,.0f} ms",
                f"p99 < {TARGET_IDLE_VISIBLE_SECONDS * 1000:.0f} ms",
                bool(trickle.visible["idle"]) and idle_p99 / 1000 < TARGET_IDLE_VISIBLE_SECONDS),
        Verdict("live sessions never visible", str(trickle.never_visible), "0", trickle.never_visible == 0,
                check=True),
        *[Verdict(f"peak memory, {role} (VmHWM sum / RSS sum peak)",
                  f"{megabytes(peak.hwm_sum_kb)} / {megabytes(peak.rss_sum_kb)}", "-", None)
          for role, peak in outcome.memory.items()],
        Verdict("nothing lost, nothing counted twice", f"{sum(ok for _, ok in outcome.checks)}/{len(outcome.checks)} "
                "checks", "all", all(ok for _, ok in outcome.checks), check=True),
    ]
    return print_verdicts("bench.production: figures and targets", verdicts, args.strict)
