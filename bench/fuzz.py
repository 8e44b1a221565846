"""Fuzzing: schemathesis over the whole OpenAPI document, with a far larger budget than the test suite's.

Every documented operation is driven with schema-valid (positive) and schema-invalid (negative) requests,
``--max-examples`` of each (1,000 by default), each with the key its scope needs (the bootstrap key reads
and ingests, the admin key changes rule settings). Every answer is checked: never a 5xx, only documented
status codes, headers and content types, bodies that match their schema, and schema-invalid input refused
with a 4xx. Then every path is asked with the methods it does not take (405 with ``Allow``). The app runs
in-process (falcon.testing) on a throwaway PostgreSQL database (``--sqlite`` for a file) with the queue in
immediate mode, so an accepted session is stored, scored and reported on (emails rendered to files) inside
the request, and the end of the run also counts sessions that failed to store, reports that failed to
render, and errors logged.

    python -m bench.fuzz [--max-examples 1000] [--seed 0] [--sqlite]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import hypothesis.strategies as st
import schemathesis
from falcon import testing
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from engine.config import Settings
from engine.db import release_connections
from engine.migrations import migrate
from engine.models import EmailReport, InboxItem
from engine.queue import create_huey
from engine.services import Services, build_services
from engine.tasks import register_tasks
from engine.terminal import print_table
from engine.throwaway import PostgresUnavailable, admin_url, throwaway_postgres
from engine.validation import UNSTORABLE

READ_KEY, ADMIN_KEY = "fuzz-key", "fuzz-admin-key"
NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
SEEDED_TUTORS = ("t-ada", "t-bo", "t-cy")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
NEGATIVE_CHECKS = [*CHECKS, negative_data_rejection]
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
SHOWN_FAILURES = 20


@dataclass
class Tally:
    """What one operation in one generation mode gave."""

    label: str
    cases: int = 0
    statuses: Counter = field(default_factory=Counter)
    server_errors: int = 0
    undocumented: int = 0
    seconds: float = 0.0


@dataclass
class Failure:
    label: str
    status: int
    problems: list[str]
    request: str


def seed_sessions() -> list[dict[str, Any]]:
    """Six sessions for each seeded tutor, some moved by the tutor, so tutor pages have something to show."""
    sessions = []
    for n, tutor_id in enumerate(SEEDED_TUTORS):
        for i in range(6):
            when = (NOW - (i + 1) * DAY).isoformat()
            session = {"session_id": f"{tutor_id}-s{i}", "tutor_id": tutor_id, "student_id": f"stu-{i}",
                       "scheduled_time": when, "status": "completed", "tutor_name": f"Tutor {tutor_id}"}
            if i < 2 * n:
                session.update(status="rescheduled", reschedule_info={"initiator": "tutor", "original_time": when})
            sessions.append(session)
    return sessions


def acceptable(record: dict, days_ago: int) -> dict:
    """A generated record made acceptable (real datetimes, reschedule info iff rescheduled), its text kept."""
    fixed = {key: value for key, value in record.items() if isinstance(key, str) and not isinstance(value, dict | list)}
    for key in ("session_id", "tutor_id", "student_id"):
        text = UNSTORABLE.sub("", str(fixed.get(key) or "")).strip()
        fixed[key] = "".join(ch for ch in text if ch.isprintable())[:128] or f"fuzz-{key}"
    when = NOW - days_ago * DAY
    status = fixed.get("status") if fixed.get("status") in ("completed", "no_show") else "rescheduled"
    fixed.update(scheduled_time=when.isoformat(), completed_time=None, status=status, reschedule_info=None)
    if status == "rescheduled":
        fixed["reschedule_info"] = {"initiator": "tutor", "reason": record.get("tutor_name"),
                                    "new_time": (when + DAY).isoformat()}
    return fixed


def settings_change(body: dict, threshold: float) -> dict:
    """A generated change made one the rule takes (its reason and author kept), so a rescore follows."""
    return {**body, "settings": {"threshold": threshold, "clear_threshold": threshold}}


def load_schema(app) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}})
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app, config=config)


def steered(schema: schemathesis.BaseSchema, rule_names: list[str]) -> schemathesis.BaseSchema:
    """For schema-valid requests: some name a tutor or rule that exists, make a session acceptable, or make a
    settings change the rule takes (negative requests stay as generated: these would make them valid)."""
    known = {"tutor_id": SEEDED_TUTORS, "name": rule_names}

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):
        # now and then a tutor or rule that exists, so 200 bodies are checked as well as 404s
        if not isinstance(path_parameters, dict) or not set(known) & set(path_parameters):
            return st.just(path_parameters)
        name = next(name for name in known if name in path_parameters)
        real = st.sampled_from(known[name]).map(lambda value: {**path_parameters, name: value})
        return st.one_of(st.just(path_parameters), real)

    @schema.hook
    def flatmap_body(context, body):
        # random datetimes are nearly always refused: make some records acceptable, so storing and scoring run;
        # random setting names are refused: make some changes real, so the audit trail and the rescore run
        if context.operation is None:
            return st.just(body)
        if context.operation.method.upper() == "PUT" and isinstance(body, dict):
            return st.one_of(st.just(body), st.floats(1, 50).map(lambda value: settings_change(body, value)))
        if context.operation.path != "/api/sessions":
            return st.just(body)
        if isinstance(body, dict):
            return st.one_of(st.just(body), st.integers(0, 100).map(lambda days: acceptable(body, days)))
        if isinstance(body, list) and body and all(isinstance(item, dict) for item in body):
            return st.one_of(st.just(body), st.integers(0, 100).map(
                lambda days: [acceptable(item, days) for item in body]))
        return st.just(body)

    return schema


def key_for(method: str) -> dict[str, str]:
    return {"X-API-Key": ADMIN_KEY if method == "PUT" else READ_KEY}


def fuzz_operation(operation, mode: GenerationMode, max_examples: int, seed: int,
                   failures: list[Failure]) -> Tally:
    label = f"{operation.method.upper()} {operation.path} ({mode.value})"
    tally = Tally(label)
    checks = NEGATIVE_CHECKS if mode is GenerationMode.NEGATIVE else CHECKS

    @hypothesis.seed(seed)
    @hypothesis.settings(max_examples=max_examples, deadline=None, database=None, print_blob=False,
                         phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
                         suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        response = case.call(headers=key_for(case.method.upper()))
        tally.cases += 1
        tally.statuses[response.status_code] += 1
        tally.server_errors += response.status_code >= 500
        try:
            case.validate_response(response, checks=checks, headers=key_for(case.method.upper()))
        except (Exception, FailureGroup) as exc:  # a failed check: recorded, and the run goes on
            tally.undocumented += 1
            failures.append(Failure(label, response.status_code, problems_of(exc), describe(case)))
        if tally.cases % 250 == 0:
            print(f"  {label}: {tally.cases} cases", file=sys.stderr, flush=True)

    started = time.perf_counter()
    with contextlib.suppress(hypothesis.errors.Unsatisfiable):  # nothing schema-invalid to send (a bare path)
        run()
    tally.seconds = time.perf_counter() - started
    return tally


def probe_unsupported_methods(client: testing.TestClient, schema, rule: str, failures: list[Failure]) -> Tally:
    """Each documented path with every method it does not document: 405 naming the allowed ones."""
    tally = Tally("undocumented methods (admin key)")
    documented: dict[str, set[str]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        documented.setdefault(operation.path, set()).add(operation.method.upper())
    for path, methods in documented.items():
        concrete = path.replace("{tutor_id}", SEEDED_TUTORS[0]).replace("{name}", rule)
        for method in sorted(set(METHODS) - methods):
            response = client.simulate_request(method, concrete, headers={"X-API-Key": ADMIN_KEY})
            tally.cases += 1
            tally.statuses[response.status_code] += 1
            tally.server_errors += response.status_code >= 500
            allowed = set((response.headers.get("Allow") or "").replace(" ", "").split(","))
            if response.status_code != 405 or not methods <= allowed:
                tally.undocumented += 1
                failures.append(Failure(tally.label, response.status_code, [f"expected 405 with Allow: {methods}"],
                                        f"{method} {concrete}"))
    return tally


def problems_of(exc: BaseException) -> list[str]:
    inner = getattr(exc, "exceptions", None) or [exc]
    return [" ".join(str(getattr(failure, "title", "") or failure).split())[:200] for failure in inner]


def describe(case) -> str:
    parts = [case.method.upper(), case.formatted_path]
    if case.query:
        parts.append(f"query={case.query!r}"[:200])
    if case.body is not None and not isinstance(case.body, schemathesis.core.NotSet):
        parts.append(f"body={case.body!r}"[:300])
    return " ".join(parts)


class ErrorLog(logging.Handler):
    """Counts the errors (and tracebacks) the product logs during the run."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage()[:200] + (" (with a traceback)" if record.exc_info else ""))


@contextlib.contextmanager
def database_url(use_sqlite: bool, folder: Path) -> Iterator[str]:
    if use_sqlite:
        yield f"sqlite:///{folder / 'fuzz.db'}"
        return
    with throwaway_postgres(admin_url(), "fuzz") as url:
        yield url


def build(url: str, folder: Path) -> tuple[Services, Any]:
    settings = Settings(data_dir=folder, database_url=url, queue_url="memory://", api_keys=(READ_KEY,),
                        admin_api_keys=(ADMIN_KEY,), ingest_rate_limit=None, email_policy="every-session")
    services = build_services(settings).at(NOW)
    migrate(services.database)
    app = create_app(services, register_tasks(create_huey(settings.queue_url), services))
    seeded = testing.TestClient(app, headers={"X-API-Key": READ_KEY}).simulate_post("/api/sessions",
                                                                                  json=seed_sessions())
    if seeded.status_code != 202:
        raise SystemExit(f"seeding failed: {seeded.status_code} {seeded.text[:300]}")
    return services, app


def stored_problems(services: Services) -> list[tuple[str, str]]:
    with services.database.connection_context():
        inbox = Counter(status for (status,) in InboxItem.select(InboxItem.status).tuples())
        emails = Counter(status for (status,) in EmailReport.select(EmailReport.status).tuples())
        errors = [row.last_error for row in InboxItem.select().where(InboxItem.status == "failed").limit(3)]
    return [("sessions accepted", f"{sum(inbox.values()):,}"),
            ("sessions not stored (pending, failed)", f"{inbox['pending']:,}, {inbox['failed']:,}"
             + (f": {errors}" if errors else "")),
            ("email reports (sent, failed)", f"{emails['sent']:,}, {emails['failed']:,}")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=1000, help="per operation and generation mode")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead of a throwaway PostgreSQL")
    args = parser.parse_args(argv)
    logging.getLogger("tutor_quality").setLevel(logging.INFO)
    error_log = ErrorLog()
    logging.getLogger("tutor_quality").addHandler(error_log)
    with tempfile.TemporaryDirectory() as temp, database_url(args.sqlite, Path(temp)) as url:
        services, app = build(url, Path(temp))
        rule_names = [status.name for status in services.rules.statuses]
        schemas = {GenerationMode.POSITIVE: steered(load_schema(app), rule_names),
                   GenerationMode.NEGATIVE: load_schema(app)}
        failures: list[Failure] = []
        tallies = []
        print(f"fuzzing {'SQLite' if args.sqlite else 'PostgreSQL'}, {args.max_examples} examples per operation "
              f"and mode, seed {args.seed}", file=sys.stderr, flush=True)
        # settings changes first: each rescores every tutor, and there are only the seeded ones yet
        operations = {mode: sorted((result.ok() for result in schema.get_all_operations()),
                                   key=lambda operation: operation.method != "put") for mode, schema in schemas.items()}
        for positive, negative in zip(operations[GenerationMode.POSITIVE], operations[GenerationMode.NEGATIVE],
                                      strict=True):
            for mode, operation in ((GenerationMode.POSITIVE, positive), (GenerationMode.NEGATIVE, negative)):
                tally = fuzz_operation(operation, mode, args.max_examples, args.seed, failures)
                print(f"{tally.label}: {tally.cases} cases in {tally.seconds:.1f} s, {tally.server_errors} 5xx, "
                      f"{tally.undocumented} not as documented", file=sys.stderr, flush=True)
                tallies.append(tally)
        tallies.append(probe_unsupported_methods(testing.TestClient(app), schemas[GenerationMode.NEGATIVE],
                                                 rule_names[0], failures))
        facts = stored_problems(services)
        release_connections(services.database)
    report(tallies, failures, facts, error_log.messages)
    broken = sum(t.server_errors + t.undocumented for t in tallies) + len(error_log.messages)
    return 1 if broken else 0


def report(tallies: list[Tally], failures: list[Failure], facts: list[tuple[str, str]], errors: list[str]) -> None:
    rows = [[t.label, f"{t.cases:,}", f"{t.server_errors:,}", f"{t.undocumented:,}",
             ", ".join(f"{status}: {n}" for status, n in sorted(t.statuses.items())), f"{t.seconds:.1f}"]
            for t in tallies]
    total = [sum(t.cases for t in tallies), sum(t.server_errors for t in tallies), sum(t.undocumented for t in tallies)]
    rows.append(["all", *(f"{n:,}" for n in total), "", f"{sum(t.seconds for t in tallies):.1f}"])
    print_table([("operation (mode)", "left"), ("cases", "right"), ("5xx", "right"), ("not as documented", "right"),
                 ("statuses", "left"), ("s", "right")], rows, caption="schemathesis: every answer checked")
    print_table([("after the run", "left"), ("", "left")],
                [*facts, ("errors logged", f"{len(errors):,}")])
    for failure in failures[:SHOWN_FAILURES]:
        print(f"FAILED {failure.label}: {failure.status} {'; '.join(failure.problems)}\n    {failure.request}")
    for message in errors[:SHOWN_FAILURES]:
        print(f"LOGGED {message}")
    if len(failures) > SHOWN_FAILURES:
        print(f"... and {len(failures) - SHOWN_FAILURES} more failures")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except PostgresUnavailable as exc:
        sys.exit(f"bench.fuzz: {exc} (or pass --sqlite)")
