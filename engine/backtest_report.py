"""A backtest in words and figures: the current and the proposed settings side by side, for the terminal."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from engine.accuracy import Evaluation, criteria, evaluate
from engine.backtest import Backtest
from engine.ruleset import RuleSet

LISTED = 20  # tutors named per list; the JSON has them all


def judge_backtest(rules: RuleSet, rule: str, truth: Mapping[str, Any], result: Backtest) -> dict | None:
    """Precision, recall and delay of both outcomes against the truth, judged by the current settings' question."""
    judged = {c.rule: c for c in criteria(rules, truth)[0]}
    criterion = judged.get(rule)
    if criterion is None:
        return None
    return {"truly_at_risk_when": criterion.describe(),
            **{outcome.label: _evaluation(evaluate(truth, criterion, outcome.flagged_now, outcome.raises,
                                                   outcome.flapping))
               for outcome in (result.current, result.proposed)}}


def backtest_report(result: Backtest, judged: Mapping[str, Any] | None = None) -> str:
    changed = {k: v for k, v in result.proposed.settings.items() if result.current.settings.get(k) != v}
    lines = [f"{result.rule}: {(result.last_day - result.first_day).days + 1} days "
             f"({result.first_day} to {result.last_day}), {len(result.names)} tutors, replayed in "
             f"{result.seconds:.1f} s; nothing was changed",
             f"{'':<26}{'current':>16}{'proposed':>16}"]
    lines += [f"{'  ' + key:<26}{_text(result.current.settings.get(key)):>16}{_text(value):>16}"
              for key, value in changed.items()] or ["  (the proposed settings are the current ones)"]
    rows = [("flagged today (replayed)", lambda o: len(o.flagged_now)), ("flags raised", lambda o: o.raised),
            ("flags cleared", lambda o: o.cleared), ("flapping tutors", lambda o: len(o.flapping))]
    lines += [f"{label:<26}{getter(result.current):>16}{getter(result.proposed):>16}" for label, getter in rows]
    lines.append(f"{'flagged today (stored)':<26}{len(result.stored_flagged):>16}")
    if judged:
        lines.append(f"against the truth (truly at risk when {judged['truly_at_risk_when']}):")
        for key, label in (("precision", "  precision"), ("recall", "  recall"),
                           ("median_delay_days", "  median days to flag")):
            lines.append(f"{label:<26}{_text(judged['current'][key]):>16}{_text(judged['proposed'][key]):>16}")
    for title, tutors in (("would be newly flagged", result.newly_flagged),
                          ("would no longer be flagged", result.no_longer_flagged)):
        named = ", ".join(f"{t} ({result.names.get(t) or '?'})" for t in tutors[:LISTED])
        more = f" and {len(tutors) - LISTED} more" if len(tutors) > LISTED else ""
        lines.append(f"{title} ({len(tutors)}): {named or '-'}{more}")
    return "\n".join(lines)


def _evaluation(result: Evaluation) -> dict[str, Any]:
    delays = result.detection_delays
    return {"precision": _round(result.precision), "recall": _round(result.recall),
            "true_positives": result.true_positives, "false_positives": result.false_positives,
            "false_negatives": result.false_negatives, "flapping": result.flapping,
            "median_delay_days": statistics.median(delays) if delays else None}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
