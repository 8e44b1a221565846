"""``tqs worker``: the Huey consumer, plus a sweeper that re-enqueues inbox rows nobody finished.

Huey does not acknowledge tasks, so a task in flight when a consumer dies is gone; its rows
are still pending in the inbox, and the sweeper queues them again after
``TQS_SWEEP_AFTER_SECONDS`` (rows never queued, e.g. while Redis was down, at once).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

from huey.consumer import Consumer

from engine import inbox
from engine.config import Settings
from engine.db import release_connections
from engine.logs import configure_logging, log_event
from engine.migrations import migrate
from engine.queue import create_huey, scoring_tasks_queued
from engine.rescoring import claimable_count
from engine.rulestore import claim_stalled_batches
from engine.services import build_services
from engine.tasks import Tasks, register_tasks

logger = logging.getLogger("tutor_quality.worker")
# SIGTERM (a deploy, a scale-down) lets the tasks in hand finish for up to this long, inside the 30 s that
# Render, Heroku and Kubernetes wait before SIGKILL; a task cut off then rolls back and is swept up later.
SHUTDOWN_TIMEOUT_SECONDS = 20


class Sweeper(threading.Thread):
    """Every ``interval`` seconds, queue pending inbox rows that were never queued or were lost."""

    def __init__(self, tasks: Tasks, settings: Settings, stop: threading.Event):
        super().__init__(name="inbox-sweeper", daemon=True)
        self.tasks, self.settings, self.stop_event = tasks, settings, stop

    def run(self) -> None:
        while not self.stop_event.wait(self.settings.sweep_interval_seconds):
            self.sweep_once()

    def sweep_once(self) -> int:
        """Queue stuck inbox rows; when the queue is idle, queue a rescore for tutors left waiting
        (a worker died between storing and rescoring, or a rescore failed and its pause is over);
        queue email reports never prepared or never sent."""
        services = self.tasks.services
        try:
            # While tasks wait in the queue, old enqueued rows are most likely just waiting too: re-queue
            # them only once the queue has drained (rows never enqueued are queued whatever the backlog).
            scoring_idle = scoring_tasks_queued(self.tasks.huey) == 0
            ids = inbox.stuck_ids(services.database, dt.timedelta(seconds=self.settings.sweep_after_seconds),
                                  services.clock(), include_lost=scoring_idle)
            if ids:
                inbox.mark_enqueued(services.database, ids, services.clock())
                if self.tasks.enqueue_inbox(ids):
                    log_event(logger, "inbox_swept", items=len(ids))
            if scoring_idle and claimable_count(services):
                self.tasks.rescore_waiting()
                log_event(logger, "rescore_swept")
            stalled = claim_stalled_batches(services.database, dt.timedelta(seconds=self.settings.sweep_after_seconds),
                                            services.clock()) if scoring_idle else []
            for batch in stalled:
                if self.tasks.queue_settings_rescore(batch):
                    log_event(logger, "settings_rescore_swept", settings_change=batch)
            emails = self.tasks.emails.sweep(dt.timedelta(seconds=self.settings.sweep_after_seconds),
                                             include_lost=self.tasks.huey.pending_count() == 0)
            if emails.tutor_ids or emails.report_ids:
                log_event(logger, "email_swept", tutors=len(emails.tutor_ids), reports=len(emails.report_ids))
            return len(ids)
        except Exception as exc:  # the database or queue is down: try again next round
            log_event(logger, "sweep_failed", logging.WARNING, error=type(exc).__name__)
            return 0


class SweepingConsumer(Consumer):
    """Huey's consumer with the sweeper started after the workers have forked."""

    def __init__(self, huey, sweeper: Sweeper, **options):
        super().__init__(huey, **options)
        self.sweeper = sweeper

    def start(self) -> None:
        super().start()
        self.sweeper.start()

    def stop(self, graceful: bool = False) -> None:
        self.sweeper.stop_event.set()
        super().stop(graceful=graceful)


def run_worker(settings: Settings, workers: int, worker_type: str = "process") -> None:
    """Run the consumer until SIGTERM, which finishes the tasks in hand and leaves the rest queued, or SIGINT,
    which stops at once (what it was storing rolls back, and the sweeper queues it again)."""
    configure_logging(settings.log_level)
    services = build_services(settings)
    migrate(services.database)
    release_connections(services.database)  # forked workers must not share the parent's connections
    tasks = register_tasks(create_huey(settings.queue_url), services)
    sweeper = Sweeper(tasks, settings, threading.Event())
    consumer = SweepingConsumer(
        tasks.huey, sweeper, workers=workers, worker_type=worker_type, periodic=True,
        initial_delay=0.05, backoff=1.5, max_delay=1.0,  # SQLite storage polls: keep latency under a second
        graceful_signal="TERM", shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
    )
    log_event(logger, "worker_started", workers=workers, worker_type=worker_type)
    consumer.run()
    sweeper.join(timeout=5)  # a sweep in progress finishes (or rolls back) before the process goes
    log_event(logger, "worker_stopped", workers=workers)
