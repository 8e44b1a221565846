"""Score records in-process, without the queue: validate, store batch by batch, then rescore the tutors touched.

The one loop behind ``tqs ingest --sync``, the simulator's direct replay and the benchmarks.
Records go through the inbox exactly as the API's do (so the newest delivery of a session
wins whichever way it came, and a crash mid-way leaves pending rows for a worker's sweeper);
storing everything first and rescoring after means each tutor is rescored once per call,
however its sessions were spread over the batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine import inbox
from engine.rescoring import Rescored, RescoreRound, rescore_waiting, waiting_count
from engine.services import Services
from engine.terminal import ProgressHook
from engine.validation import SessionRecord, ValidationError, validate_session

DEFAULT_BATCH = 500


@dataclass
class IngestReport:
    """What one in-process ingest did."""

    stored: int = 0
    changed: int = 0
    rejected: list[tuple[int, ValidationError]] = field(default_factory=list)
    rescore: RescoreRound = field(default_factory=RescoreRound)


def validate_all(raw_items: Sequence[Any]) -> tuple[list[SessionRecord], list[tuple[int, ValidationError]]]:
    """The valid records, and each invalid one's index with its error."""
    valid, rejected = [], []
    for index, item in enumerate(raw_items):
        try:
            valid.append(validate_session(item))
        except ValidationError as exc:
            rejected.append((index, exc))
    return valid, rejected


def ingest(services: Services, raw_items: Sequence[Any], batch: int = DEFAULT_BATCH,
           progress: ProgressHook | None = None) -> IngestReport:
    """Validate, store in batches of ``batch`` through the inbox, rescore every tutor touched."""
    records, rejected = validate_all(raw_items)
    report = IngestReport(rejected=rejected)
    batch = min(batch, inbox.MAX_BATCH)
    with services.database.connection_context():
        for start in range(0, len(records), batch):
            ids = inbox.accept(services.database, records[start:start + batch], services.clock())
            stored = inbox.store_items(services, ids).stored
            report.stored += len(stored)
            report.changed += sum(entry.changed for _, entry in stored)
            if progress:
                progress("store", start + len(ids), len(records))
        waiting, done = waiting_count(), []

        def rescored(tutor: Rescored) -> None:
            done.append(tutor)
            if progress:
                progress("rescore", len(done), waiting)

        report.rescore = rescore_waiting(services, on_rescored=rescored)
    return report
