"""The ``tqs`` command: set up the database, ingest sessions, read scores, list rules, rescore."""

from __future__ import annotations

import argparse
import getpass
import importlib.metadata
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import peewee

from engine import inbox, queries, security_cli
from engine.audit import history as settings_history
from engine.audit import stored_settings
from engine.backtest import backtest as run_backtest
from engine.backtest import window_counts
from engine.backtest_report import backtest_report, judge_backtest
from engine.config import ConfigError, Settings
from engine.db import release_connections
from engine.evidence import fit_prior
from engine.explanations import describe_explanation
from engine.ingest import ingest as run_ingest
from engine.ingest import validate_all
from engine.migrations import migrate, schema_version
from engine.queue import create_huey
from engine.rescoring import rescore_all
from engine.rulereport import describe_rules
from engine.rulestore import change_settings, rescore_after_change
from engine.services import Services, build_services
from engine.tasks import register_tasks
from engine.terminal import print_table, progress_bars
from engine.validation import parse_datetime
from engine.windows import day_of
from engine.worker import run_worker
from notifications import outbox
from notifications.delivery import deliver_ready

COMMANDS_GROUP = "tutor_quality.commands"  # packages add tqs subcommands here: fn(command) registers them


def tutor_columns(services: Services) -> list[tuple[str, str, str]]:
    """(field, header, justify): who, sessions, each rule's rate in the window it decides on, the standing."""
    windows = {rule: services.rules.window_days(rule) for rule, _ in services.metric_names.rates}
    rates = [(rate.metric(windows[rule]), f"{rate.label} {windows[rule]}d %", "right")
             for rule, rate in services.metric_names.rates]
    return [("tutor_id", "tutor", "left"), ("name", "name", "left"), ("sessions_30d", "sessions 30d", "right"),
            *rates, ("risk_score", "risk", "right"), ("flagged", "flag", "left")]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        services = build_services(settings)
    except (ConfigError, ValueError) as exc:
        print(f"tqs: configuration error: {exc}", file=sys.stderr)
        return 2
    if not args.connect:  # long-running commands manage their own connections
        return args.command(services, args)
    with services.database.connection_context():
        return args.command(services, args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tqs", description="Tutor Quality: score tutors, flag the ones at risk.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, handler: Any, help_text: str, connect: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(command=handler, connect=connect)
        return sub

    command("init-db", init_db, "create or migrate the schema (safe to repeat)")
    ingest_cmd = command("ingest", ingest, "ingest a JSON array of session records")
    ingest_cmd.add_argument("file", type=Path)
    ingest_cmd.add_argument("--sync", action="store_true", help="score inline instead of through the queue")
    ingest_cmd.add_argument("--as-of", type=_moment, help="score as of this ISO 8601 time (default: now)")
    tutors_cmd = command("tutors", tutors, "list tutors with their scores")
    tutors_cmd.add_argument("--flagged", action="store_true", help="only flagged tutors")
    tutors_cmd.add_argument("--search", help="match tutor id or name")
    tutors_cmd.add_argument("--sort", default="-risk_score", help="field, '-' prefix for descending")
    tutors_cmd.add_argument("--limit", type=int, help="at most this many (default: every tutor)")
    tutors_cmd.add_argument("--json", action="store_true", help="print a JSON array of tutor records")
    tutor_cmd = command("tutor", tutor, "one tutor in detail: flags, insights, recommendations")
    tutor_cmd.add_argument("tutor_id")
    tutor_cmd.add_argument("--json", action="store_true")
    rules_cmd = command("rules", rules, "every installed rule: status, version, source and settings")
    rules_cmd.add_argument("--json", action="store_true")
    rules_actions = rules_cmd.add_subparsers(metavar="ACTION")
    set_cmd = rules_actions.add_parser("set", help="change a rule's settings now (stored, audited, then rescored)",
                                       description="Change a rule's settings without a redeploy: checked like "
                                       "its variables, stored over them, recorded with who and why, then every "
                                       "tutor is rescored (the new settings apply from now on).")
    set_cmd.set_defaults(command=rules_set)
    set_cmd.add_argument("name", help="the rule")
    set_cmd.add_argument("changes", nargs="*", metavar="KEY=VALUE", help="e.g. threshold=12 or enabled=false")
    set_cmd.add_argument("--unset", action="append", default=[], metavar="KEY",
                         help="put a setting back to the environment's value (repeatable)")
    set_cmd.add_argument("--reason", required=True, help="why: kept in the audit trail")
    set_cmd.add_argument("--by", help="who (default: cli:<user>)")
    history_cmd = rules_actions.add_parser("history", help="the audit trail of settings changes, newest first")
    history_cmd.set_defaults(command=rules_history)
    history_cmd.add_argument("name", nargs="?", help="one rule's changes (default: every rule's)")
    history_cmd.add_argument("--json", action="store_true")
    fit_cmd = rules_actions.add_parser("fit-prior", help="estimate a rate rule's prior_mean and prior_strength "
                                       "(the evidence policy's) from the stored 90-day counts")
    fit_cmd.set_defaults(command=rules_fit_prior)
    fit_cmd.add_argument("name", help="the rule")
    backtest_cmd = command("backtest", backtest, "replay the stored counts under the current and proposed "
                           "settings of a rule, side by side (changes nothing)")
    backtest_cmd.add_argument("--rule", required=True, metavar="NAME")
    backtest_cmd.add_argument("--threshold", type=float, help="the proposed threshold, in percent")
    backtest_cmd.add_argument("--window", type=int, help="the proposed window_days")
    backtest_cmd.add_argument("--policy", help="the proposed flag_policy (rate or evidence)")
    backtest_cmd.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other setting")
    backtest_cmd.add_argument("--days", type=int, default=90, help="days replayed, ending today (default 90)")
    backtest_cmd.add_argument("--truth", type=Path, help="a simulator truth file: adds precision and recall")
    backtest_cmd.add_argument("--json", action="store_true")
    api_cmd = command("api", api, "serve the REST API with gunicorn", connect=False)
    api_cmd.add_argument("--bind", default="127.0.0.1:8000")
    api_cmd.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1), help="gunicorn worker processes")
    worker_cmd = command("worker", worker, "run the queue consumer that scores sessions", connect=False)
    worker_cmd.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes")
    worker_cmd.add_argument("--threads", action="store_true", help="threads instead of processes")
    command("retry-failed", retry_failed, "queue again the sessions and email reports that failed for good")
    security_cli.add_commands(command)
    for entry_point in importlib.metadata.entry_points(group=COMMANDS_GROUP):
        entry_point.load()(command)  # simulator, and later the dashboard and notifications, add their commands
    rescore_cmd = command("rescore", rescore, "roll every tutor's windows forward and snapshot through today")
    rescore_cmd.add_argument("--as-of", type=_moment, help="rescore as of this ISO 8601 time (default: now)")
    rescore_cmd.add_argument("--rebuild", action="store_true", help="recompute everything derived from sessions")
    rescore_cmd.add_argument("--rule", metavar="NAME",
                             help="recompute this rule's whole history (after it changed); leave the others")
    return parser


def _moment(text: str):
    try:
        return parse_datetime(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def init_db(services: Services, args: argparse.Namespace) -> int:
    applied = migrate(services.database)
    done = f"applied {', '.join(map(str, applied))}" if applied else "nothing to apply"
    print(f"schema at version {schema_version(services.database)} ({done})")
    return 0


def ingest(services: Services, args: argparse.Namespace) -> int:
    try:
        raw = json.loads(args.file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"tqs ingest: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    if not isinstance(raw, list):
        print(f"tqs ingest: {args.file} must hold a JSON array of session records", file=sys.stderr)
        return 2
    migrate(services.database)
    if _as_of_in_the_past(args.as_of):
        return 2
    if not args.sync:
        valid, rejected = validate_all(raw)
        _print_rejected(rejected)
        return _enqueue(services, valid, len(rejected))
    with progress_bars() as progress:
        report = run_ingest(services.at(args.as_of) if args.as_of else services, raw, progress=progress)
        emails = deliver_ready(services, [done.tutor_id for done in report.rescore.rescored], progress)
    _print_rejected(report.rejected)
    for tutor_id, error in report.rescore.failures.items():
        print(f"tutor {tutor_id}: could not be scored: {type(error).__name__}: {error}", file=sys.stderr)
    print(f"ingested {report.stored} sessions ({report.changed} new or changed), rejected {len(report.rejected)}; "
          f"rescored {len(report.rescore.rescored)} tutors", file=sys.stderr)
    _print_emails(services, emails)
    return 1 if report.rejected or report.rescore.failures else 0


def _print_emails(services: Services, emails: list) -> None:
    if emails:
        failed = sum(done.status == "failed" for done in emails)
        print(f"sent {sum(done.status == 'sent' for done in emails)} email reports to "
              f"{services.settings.email_endpoint.describe()}"
              + (f"; {failed} failed (kept; a worker retries them)" if failed else ""), file=sys.stderr)


def _print_rejected(rejected) -> None:
    for index, error in rejected:
        print(f"record {index}: {error}", file=sys.stderr)


def _enqueue(services: Services, records: list, rejected: int) -> int:
    """Store in the inbox and queue, as the API does; a worker scores them."""
    tasks = register_tasks(create_huey(services.settings.queue_url), services)
    for start in range(0, len(records), inbox.MAX_BATCH):
        ids = inbox.accept(services.database, records[start:start + inbox.MAX_BATCH], services.clock())
        tasks.enqueue_inbox(ids)
    print(f"queued {len(records)} sessions for the worker, rejected {rejected}", file=sys.stderr)
    return 1 if rejected else 0


def tutors(services: Services, args: argparse.Namespace) -> int:
    try:
        records, total = _all_tutors(services, args)
    except queries.QueryError as exc:
        print(f"tqs tutors: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    columns = tutor_columns(services)
    print_table([(header, justify) for _, header, justify in columns],
                [[_cell(record.get(name)) for name, _, _ in columns] for record in records],
                caption=f"{len(records)} of {total} tutors, {sum(r['flagged'] for r in records)} flagged")
    return 0


def _all_tutors(services: Services, args: argparse.Namespace) -> tuple[list[dict], int]:
    """Page through the read layer until ``--limit`` (or every tutor) is reached."""
    wanted, records, total = args.limit, [], None
    while total is None or (len(records) < total and (wanted is None or len(records) < wanted)):
        size = queries.MAX_PAGE if wanted is None else max(1, min(queries.MAX_PAGE, wanted - len(records)))
        page = queries.list_tutors(services.metric_names, flagged=True if args.flagged else None,
                                   search=args.search, sort=args.sort, limit=size, offset=len(records))
        total = page.total
        records += page.tutors
        if not page.tutors:
            break
    return records, total


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "FLAG" if value else ""
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def tutor(services: Services, args: argparse.Namespace) -> int:
    detail = queries.get_tutor_detail(args.tutor_id, services.metric_names)
    if detail is None:
        print(f"tqs tutor: no tutor {args.tutor_id!r}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(detail, indent=2))
        return 0
    print(f"{detail['tutor_id']}  {detail['name'] or ''}  {'FLAGGED' if detail['flagged'] else 'ok'}  "
          f"risk {detail['risk_score']:.0f}/100")
    for flag in detail["flags"]:
        state = f"FLAGGED ({flag['severity']})" if flag["flagged"] else "not flagged"
        stale = f" [stale: {flag['error']}]" if flag.get("stale") else ""
        print(f"  {flag['rule']} {flag['rule_version']}: {state}, {describe_explanation(flag['explanation'])}{stale}")
    for name in services.metric_names:
        print(f"    {name:<28} {_cell(detail.get(name)) or '-'}")
    for heading, lines in (("Insights", detail["insights"]), ("Recommendations", detail["recommendations"])):
        if lines:
            print(heading + ":")
            print("\n".join(f"  - {line}" for line in lines))
    return 0


def rules(services: Services, args: argparse.Namespace) -> int:
    """Every installed rule: status, version, source, settings (with their variables), and what needs doing."""
    migrate(services.database)
    ruleset = services.refresh_rules()
    report = describe_rules(ruleset, stored_settings(services.database), services.settings.rule_env)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    for entry in report:
        print(f"{entry['name']} {entry['version'] or ''}  [{entry['status']}]  from {entry['source']}")
        if entry.get("description"):
            print(f"    {entry['description']}")
        if entry.get("error"):
            print(f"    error: {entry['error']}")
        for setting in entry.get("settings", []):
            changed = "" if setting["value"] == setting["default"] else f" (default {setting['default']})"
            origin = " [set at runtime]" if setting["source"] == "runtime" else ""
            print(f"    {setting['variable']}={setting['value']}{changed}{origin}  {setting['description']}")
        if entry.get("outdated_tutors"):
            print(f"    {entry['outdated_tutors']} tutors were scored by another version: "
                  f"run tqs rescore --rule {entry['name']}")
        if entry.get("failing"):
            print(f"    failing on {entry['failing']['tutors']} tutors, last: {entry['failing']['last_error']}")
    return 1 if any(e["status"] == "failed" or e.get("failing") for e in report) else 0


def rules_set(services: Services, args: argparse.Namespace) -> int:
    """Store a change of a rule's settings (checked, audited), then rescore every tutor with progress."""
    migrate(services.database)
    changes: dict[str, str | None] = {}
    for pair in args.changes:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            print(f"tqs rules set: {pair!r} must be KEY=VALUE, e.g. threshold=12", file=sys.stderr)
            return 2
        changes[key.strip()] = value
    changes.update({key.strip(): None for key in args.unset})
    by = args.by or f"cli:{getpass.getuser()}"
    try:
        made = change_settings(services, args.name, changes, by, args.reason)
    except ValueError as exc:
        print(f"tqs rules set: {exc}", file=sys.stderr)
        return 2
    if not made:
        print(f"{args.name}: nothing to change (already {', '.join(f'{k}={v}' for k, v in changes.items())})"
              .replace("=None", " from the environment"))
        return 0
    for change in reversed(made):
        print(f"{args.name}.{change.name}: {change.old_value} -> {change.new_value}  (change {change.batch}, by {by})")
    with progress_bars() as progress:
        done = rescore_after_change(services, made[0].batch,
                                    progress=lambda done, total: progress("rescore", done, total))
        emails = deliver_ready(services, done.changed, progress)  # as a worker does after the API's change
    print(f"rescored {done.tutors} tutors under the new settings; {len(done.changed)} changed flag", file=sys.stderr)
    _print_emails(services, emails)
    return 0


def rules_history(services: Services, args: argparse.Namespace) -> int:
    """The audit trail: who changed which setting, when, from what to what, and why."""
    migrate(services.database)
    changes = settings_history(services.database, args.name)
    if args.json:
        print(json.dumps([change.as_dict() for change in changes], indent=2))
        return 0
    rows = [[change.changed_at.strftime("%Y-%m-%d %H:%M"), change.rule, change.name,
             f"{change.old_value} -> {change.new_value}", change.changed_by, change.reason,
             change.rescore_state] for change in changes]
    print_table([("when (UTC)", "left"), ("rule", "left"), ("setting", "left"), ("change", "left"), ("by", "left"),
                 ("reason", "left"), ("rescore", "left")], rows,
                caption=f"{len(rows)} settings changes" + (f" of {args.name}" if args.name else ""))
    return 0


def rules_fit_prior(services: Services, args: argparse.Namespace) -> int:
    """Print the population's prior for a rate rule, estimated from every tutor's last 90 days."""
    rules = services.refresh_rules()
    loaded = rules.rules.get(args.name)
    if loaded is None or loaded.info.rate is None or "prior_mean" not in loaded.settings:
        print(f"tqs rules fit-prior: {args.name!r} is not a loaded rate rule", file=sys.stderr)
        return 2
    today = day_of(services.clock())
    counts = window_counts(services.database, rules, args.name, today, 90)
    fitted = fit_prior(counts, int(loaded.settings["min_sessions"]))
    if fitted is None:
        print(f"tqs rules fit-prior: too few tutors with {loaded.settings['min_sessions']}+ "
              f"{loaded.info.rate.base_label} in 90 days, or no spread between them, to estimate a prior",
              file=sys.stderr)
        return 1
    mean, strength = fitted
    used = sum(1 for _, base in counts if base >= int(loaded.settings["min_sessions"]))
    print(f"{args.name}: the population's {loaded.info.rate.label} over 90 days is {mean:g}%, worth {strength:g} "
          f"{loaded.info.rate.base_label} (from {used} tutors); now prior_mean="
          f"{loaded.settings['prior_mean']:g}, prior_strength={loaded.settings['prior_strength']:g}")
    print(f"to use it: tqs rules set {args.name} prior_mean={mean:g} prior_strength={strength:g} "
          f"--reason \"fitted on {today}\"")
    return 0


def backtest(services: Services, args: argparse.Namespace) -> int:
    """The rule's flags over the last days under its current and the proposed settings, side by side."""
    changes = {"threshold": args.threshold, "window_days": args.window, "flag_policy": args.policy}
    changes = {key: str(value) for key, value in changes.items() if value is not None}
    for pair in args.set:
        key, sep, value = pair.partition("=")
        if not sep:
            print(f"tqs backtest: --set {pair!r} must be KEY=VALUE", file=sys.stderr)
            return 2
        changes[key.strip()] = value
    truth = None
    if args.truth:
        try:
            truth = json.loads(args.truth.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            print(f"tqs backtest: cannot read {args.truth}: {exc}", file=sys.stderr)
            return 2
    try:
        with progress_bars() as progress:
            result = run_backtest(services.database, services.rules, args.rule, changes, day_of(services.clock()),
                                  args.days, lambda done, total: progress("replay", done, total))
    except ValueError as exc:
        print(f"tqs backtest: {exc}", file=sys.stderr)
        return 2
    judged = judge_backtest(services.rules, args.rule, truth, result) if truth else None
    if args.json:
        record = result.as_dict()
        if judged:
            record["truth"] = judged
        print(json.dumps(record, indent=2, default=str))
        return 0
    print(backtest_report(result, judged))
    return 0


def _as_of_in_the_past(as_of) -> bool:
    """An --as-of before the latest scoring would rewrite the history computed since: refuse it."""
    latest = queries.latest_scoring() if as_of else None
    if latest and as_of < latest:
        print(f"tqs: --as-of {as_of.isoformat()} is before the latest scoring ({latest.isoformat()}); "
              "scores only move forward (use a later time, or rescore --rebuild)", file=sys.stderr)
        return True
    return False


def api(services: Services, args: argparse.Namespace) -> int:
    if not services.settings.api_keys:
        print("tqs api: set TQS_API_KEYS to at least one key; the API never runs open", file=sys.stderr)
        return 2
    try:
        migrate(services.database)
    except peewee.OperationalError as exc:  # serve anyway: requests get 503 until the database is back
        print(f"tqs api: database unreachable at start ({exc}); answering 503 until it is back", file=sys.stderr)
    release_connections(services.database)
    argv = [sys.executable, "-m", "gunicorn", "api.wsgi:app", "--bind", args.bind, "--workers", str(args.workers),
            "--worker-class", "sync", "--no-control-socket", "--timeout", "30", "--graceful-timeout", "10",
            "--log-level", "warning", "--config", "python:api.gunicorn_hooks"]
    os.execv(sys.executable, argv)  # gunicorn takes over this process, so signals reach it directly


def worker(services: Services, args: argparse.Namespace) -> int:
    run_worker(services.settings, args.workers, "thread" if args.threads else "process")
    return 0


def retry_failed(services: Services, args: argparse.Namespace) -> int:
    """Queue again the sessions and the email reports that failed for good."""
    ids = inbox.reset_failed(services.database, services.clock())
    reports = outbox.reset_failed(services)
    tasks = register_tasks(create_huey(services.settings.queue_url), services) if ids or reports else None
    if ids:
        queued = tasks.enqueue_inbox(ids)
        print(f"{len(ids)} failed sessions {'queued again' if queued else 'reset; the sweeper will queue them'}")
    else:
        print("no failed sessions")
    if reports:
        try:
            tasks.emails.queue_sends(reports)
            print(f"{len(reports)} failed email reports queued again")
        except Exception as exc:  # the queue is down: the reports are pending, and the sweeper queues them
            print(f"{len(reports)} failed email reports reset; the sweeper will queue them ({type(exc).__name__})")
    else:
        print("no failed email reports")
    return 0


def rescore(services: Services, args: argparse.Namespace) -> int:
    migrate(services.database)
    if _as_of_in_the_past(args.as_of):
        return 2
    if args.rule and args.rule not in services.rules.rules:
        print(f"tqs rescore: --rule {args.rule!r} is not a loaded rule; loaded: "
              f"{', '.join(services.rules.names) or 'none'}", file=sys.stderr)
        return 2
    if args.rule and args.rebuild:
        print("tqs rescore: --rebuild recomputes every rule; leave out --rule", file=sys.stderr)
        return 2
    if args.rebuild and services.rules.failed:  # a rebuild forgets what it cannot recompute
        print(f"tqs rescore: --rebuild would throw away the results of {', '.join(services.rules.failed)}, which "
              "failed to load (see tqs rules): fix or disable it first", file=sys.stderr)
        return 2
    with progress_bars() as progress:
        count = rescore_all(services.at(args.as_of) if args.as_of else services, rebuild=args.rebuild,
                            only_rule=args.rule, progress=lambda done, total: progress("rescore", done, total))
    print(f"rescored {count} tutors", file=sys.stderr)
    return 0
