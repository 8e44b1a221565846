"""What a report says, gathered from the one read layer (:mod:`engine.queries`) into plain data.

Nothing here names a rule: every rule's flags, insights and recommendations are listed as
stored, rates are found by the documented metric naming (``<what>_rate_<N>d`` with
``sessions_<N>d`` beside it), and explanations are put into words by
:func:`engine.explanations.describe_explanation`. A new rule appears without touching this.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from engine import queries
from engine.config import WINDOW_DAYS, Settings
from engine.explanations import describe_explanation
from engine.rulekit import MetricNames

DIGEST_ROWS = 50  # per list: a digest stays far under Gmail's 102 KB clip, and the dashboard has the rest
STATUS_WORDS = {"completed": "Completed", "rescheduled": "Rescheduled", "no_show": "No-show"}


@dataclass(frozen=True)
class ReportContent:
    """Everything a template shows; ``kind`` is session, state_change or digest."""

    kind: str
    subject: str
    context: dict[str, Any] = field(default_factory=dict)


def session_report(settings: Settings, metric_names: MetricNames, session_id: str,
                   change: str | None = None) -> ReportContent | None:
    """The report on one session and its tutor as scored now; ``change`` (raised or cleared) makes it the
    report of a flag change. ``None`` when the session or its tutor is gone."""
    session = queries.get_session(session_id)
    tutor = queries.get_tutor_detail(session["tutor_id"], metric_names) if session else None
    if tutor is None:
        return None
    return tutor_report(settings, metric_names, tutor, session, change)


def tutor_report(settings: Settings, metric_names: MetricNames, tutor: Mapping[str, Any],
                 session: Mapping[str, Any] | None, change: str | None = None) -> ReportContent:
    """The report on a tutor (a ``get_tutor_detail`` record), with the session that prompted it."""
    headline = headline_rate(tutor["flags"], metric_names)
    name = tutor["name"] or tutor["tutor_id"]
    state = {"raised": "FLAG RAISED", "cleared": "FLAG CLEARED"}.get(change or "",
                                                                      "FLAGGED" if tutor["flagged"] else "OK")
    subject = f"[{state}] {name} ({tutor['tutor_id']})" + (f": {headline}" if headline else "")
    context = {
        "change": change,
        "tutor": tutor,
        "tutor_name": name,
        "headline": headline,
        "state": state,
        "link": dashboard_link(settings.dashboard_url, tutor["tutor_id"]),
        "session": _session_facts(session) if session else None,
        "rates": rate_rows(tutor, metric_names),
        "flags": [_flag_facts(flag, metric_names) for flag in tutor["flags"]],
        "insights": tutor["insights"],
        "recommendations": tutor["recommendations"],
        "policy": settings.email_policy,
    }
    return ReportContent("state_change" if change else "session", one_line(subject), context)


def digest_report(settings: Settings, metric_names: MetricNames, day: dt.date,
                  previously_flagged: Sequence[str] | None) -> ReportContent:
    """Flagged tutors now, riskiest first, and who was flagged or cleared since the previous digest
    (``previously_flagged``: the tutors flagged then; ``None`` for the first digest)."""
    flagged = queries.list_tutors(metric_names, flagged=True, sort="-risk_score", limit=DIGEST_ROWS)
    flagged_ids = queries.flagged_tutor_ids()
    before = set(previously_flagged or ())
    raised = flagged_ids - before
    cleared_ids = sorted(before - flagged_ids)
    cleared = [record for tutor_id in cleared_ids[:DIGEST_ROWS]
               if (record := queries.get_tutor_record(tutor_id, metric_names)) is not None]
    rows = []
    for tutor in flagged.tutors:
        detail = queries.get_tutor_detail(tutor["tutor_id"], metric_names) or {"flags": [], "insights": []}
        rows.append({"tutor": tutor, "name": tutor["name"] or tutor["tutor_id"],
                     "headline": headline_rate(detail["flags"], metric_names),
                     "insight": next(iter(detail["insights"]), ""),
                     "new": tutor["tutor_id"] not in before,
                     "link": dashboard_link(settings.dashboard_url, tutor["tutor_id"])})
    subject = (f"Tutor Quality digest {day.day} {day:%b %Y}: {len(flagged_ids)} flagged, "
               f"{len(raised)} newly flagged, {len(cleared_ids)} cleared")
    context = {
        "day": f"{day.day} {day:%B %Y}", "flagged": rows, "total_flagged": flagged.total,
        "shown": len(rows), "raised": len(raised), "first": previously_flagged is None,
        "cleared": [{"tutor": record, "name": record["name"] or record["tutor_id"],
                     "link": dashboard_link(settings.dashboard_url, record["tutor_id"])} for record in cleared],
        "cleared_total": len(cleared_ids),
        "link": settings.dashboard_url, "policy": settings.email_policy,
    }
    return ReportContent("digest", subject, context)


def headline_rate(flags: Sequence[Mapping[str, Any]], metric_names: MetricNames) -> str:
    """The one rate that matters most: of the flagged rule with the highest risk (else of the riskiest rule),
    as its explanation records it, e.g. ``reschedule rate 18.2% over 30 days``."""
    labels = {rule: rate.label for rule, rate in metric_names.rates}
    ranked = sorted(flags, key=lambda flag: (not flag["flagged"], -(flag.get("risk_score") or 0.0)))
    for flag in ranked:
        explanation = flag.get("explanation") or {}
        rate, days = explanation.get("rate"), explanation.get("window_days")
        if rate is not None and days:
            label = labels.get(flag["rule"]) or f"{flag['rule'].replace('_', ' ')} rate"
            return f"{label} {float(rate):.1f}% over {days} days"
    return ""


def rate_rows(tutor: Mapping[str, Any], metric_names: MetricNames) -> list[dict[str, Any]]:
    """One row per rate a loaded rule declares, a cell per window, then the sessions."""
    result = [{"label": rate.label.capitalize(),
               "cells": ["\u2014" if tutor.get(rate.metric(days)) is None else f"{tutor[rate.metric(days)]:.1f}%"
                         for days in WINDOW_DAYS]} for _, rate in metric_names.rates]
    sessions = {days: tutor.get(f"sessions_{days}d") for days in WINDOW_DAYS}
    if any(value is not None for value in sessions.values()):
        result.append({"label": "Sessions", "cells": ["\u2014" if sessions[d] is None else str(sessions[d])
                                                      for d in WINDOW_DAYS]})
    return result


def dashboard_link(base: str, tutor_id: str) -> str:
    """``TQS_DASHBOARD_URL`` with ``?tutor=ID`` (kept alongside any query it already has)."""
    parts = urlsplit(base)
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != "tutor"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("tutor", tutor_id)])))


def one_line(text: str, limit: int = 200) -> str:
    """Header-safe: whitespace (newlines included) collapsed, long text cut with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _flag_facts(flag: Mapping[str, Any], metric_names: MetricNames) -> dict[str, Any]:
    """A rule is called by what its rate measures when it declares one ("no-show rate"), else by its name."""
    labels = {rule: rate.label for rule, rate in metric_names.rates}
    return {"rule": labels.get(flag["rule"], flag["rule"].replace("_", " ")), "version": flag["rule_version"],
            "flagged": flag["flagged"],
            "severity": flag["severity"], "why": describe_explanation(flag.get("explanation") or {})}


def _session_facts(session: Mapping[str, Any]) -> dict[str, Any]:
    reschedule = session.get("reschedule")
    facts = {
        "id": session["session_id"],
        "when": _moment(session["scheduled_time"]),
        "student": session["student_name"] or session["student_id"],
        "status": STATUS_WORDS.get(session["status"], session["status"]),
        "subject": session.get("subject"),
        "first": bool(session.get("is_first_session")),
        "reschedule": None,
    }
    if reschedule:
        notice = reschedule.get("notice_hours")
        facts["reschedule"] = {
            "by": reschedule["initiator"],
            "reason": reschedule.get("reason"),
            "from": _moment(reschedule.get("original_time")),
            "to": _moment(reschedule.get("new_time")) if reschedule.get("new_time") else "not rebooked",
            "notice": None if notice is None else _hours(notice),
        }
    return facts


def _moment(iso: str | None) -> str:
    if not iso:
        return "\u2014"
    when = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return f"{when:%a} {when.day} {when:%b %Y, %H:%M} UTC"


def _hours(value: float) -> str:
    if abs(value) >= 48:
        return f"{value / 24:.0f} days"
    return f"{value:.0f} hours" if abs(value) >= 1 else f"{value * 60:.0f} minutes"
