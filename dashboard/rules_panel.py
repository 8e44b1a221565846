"""Rules: each rule's settings, a what-if on its threshold and flag policy, and the audit trail of changes.

The what-if is a backtest (:mod:`engine.backtest`): it replays the stored counts of the last 90
days under the proposed settings and shows who would be flagged, and who would change, beside
today's flags. It changes nothing; an admin applies a change with ``tqs rules set`` or
``PUT /api/rules/{name}``, which the audit trail below then lists, with its rescore's progress.
The replay runs in a thread, so the page (and every other admin's) stays responsive.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlencode

import panel as pn
import param
from panel.reactive import ReactiveHTML
from panel.viewable import Viewer

from dashboard.store import DashboardStore
from dashboard.text import esc, moment, plural
from dashboard.theme import STYLESHEETS
from engine.backtest import Backtest
from engine.logs import log_event

LISTED = 12
DEBOUNCE_SECONDS = 0.4
DASH = "\u2014"
logger = logging.getLogger("tutor_quality.dashboard")


class RangeInput(ReactiveHTML):
    """The threshold as a native ``<input type=range>`` (1% to 50% by halves): labelled for screen readers and
    moved with the arrow keys, which Panel's slider handle is not. ``value`` changes when the admin lets go."""

    value = param.Number(default=15.0)

    _template = """
<div class="tq-range"><span class="tq-range-label" aria-hidden="true">Threshold (%)</span>
<input id="range" type="range" min="1" max="50" step="0.5" value="${value}" aria-label="Threshold (%)"></input>
</div>
"""
    _dom_events = {"range": ["change"]}


class RulesPanel(Viewer):
    def __init__(self, store: DashboardStore, **params):
        super().__init__(**params)
        self._store = store
        self._asked = 0  # the latest preview asked for: an older one finishing later is dropped
        html = dict(sizing_mode="stretch_width", stylesheets=STYLESHEETS, margin=(4, 10))
        self.settings = pn.pane.HTML(**html)
        self.rule = pn.widgets.Select(label="Rule", options=[], width=220, margin=(4, 10))
        self.threshold = RangeInput(sizing_mode="stretch_width", min_width=180, max_width=320, margin=(4, 10),
                                    stylesheets=STYLESHEETS)
        self.policy = pn.widgets.Select(label="Flag policy", options=["rate", "evidence"], width=160, margin=(4, 10))
        self.preview = pn.pane.HTML(**html)
        self.audit = pn.pane.HTML(**html)
        self._rules: dict[str, dict] = {}
        self.refresh()
        self._choose_rule(preview=False)  # a replay costs seconds per 1,000 tutors: only when an admin asks
        self.preview.object = ('<p class="tq-muted">Move the threshold or choose a flag policy: the last 90 days are '
                               'replayed under it, beside the current settings.</p>')
        self.rule.param.watch(lambda _: self._choose_rule(), "value")
        self.threshold.param.watch(self._ask, "value")
        self.policy.param.watch(self._ask, "value")

    def refresh(self) -> None:
        report = self._store.rules_report()
        self._rules = {r["name"]: r for r in report if r["status"] == "loaded" and _setting(r, "threshold")}
        if list(self._rules) != self.rule.options:
            self.rule.options = list(self._rules)
        if self.rule.value not in self._rules and self._rules:
            self.rule.value = next(iter(self._rules))
        self.settings.object = render_settings(report)
        self.audit.object = render_audit(self._store.settings_changes())

    def _choose_rule(self, preview: bool = True) -> None:
        """Set the slider and policy to the chosen rule's current settings, and (when asked) preview them."""
        entry = self._rules.get(self.rule.value)
        if entry is None:
            self.preview.object = '<p class="tq-empty">No loaded rule has a threshold to try.</p>'
            return
        self.threshold.value = float(_setting(entry, "threshold")["value"])
        policy = _setting(entry, "flag_policy")
        self.policy.visible = policy is not None
        if policy is not None:
            self.policy.value = policy["value"]
        if preview:
            pn.state.execute(self._ask, schedule=True)

    async def _ask(self, *_) -> None:
        rule = self.rule.value
        entry = self._rules.get(rule)
        if entry is None:
            return
        changes = {"threshold": str(self.threshold.value)}
        clear = _setting(entry, "clear_threshold")
        if clear is not None and float(clear["value"]) > self.threshold.value:
            changes["clear_threshold"] = str(self.threshold.value)  # the clear level may not exceed the threshold
        if self.policy.visible:
            changes["flag_policy"] = self.policy.value
        self._asked += 1
        asked = self._asked
        await asyncio.sleep(DEBOUNCE_SECONDS)  # one replay for a run of arrow-key presses, not one each
        if asked != self._asked:
            return
        self.preview.object = f'<p class="tq-muted" aria-live="polite">Replaying 90 days of {esc(rule)}\u2026</p>'
        try:
            result = await asyncio.to_thread(self._store.what_if, rule, changes)
        except ValueError as exc:
            self.preview.object = f'<p class="tq-notice" role="alert">{esc(exc)}</p>'
            return
        except Exception as exc:  # the database went away: say so, keep the page
            log_event(logger, "what_if_failed", logging.WARNING, rule=rule, error=type(exc).__name__)
            self.preview.object = '<p class="tq-notice" role="alert">The preview could not be computed just now.</p>'
            return
        if asked == self._asked:
            self.preview.object = render_preview(result)
            log_event(logger, "what_if", rule=rule, tutors=len(result.names), ms=1000 * result.seconds)

    def __panel__(self) -> pn.viewable.Viewable:
        intro = pn.pane.HTML(
            '<section class="tq tq-section"><h2 class="tq-h2">Rules: what if, and what changed</h2>'
            '<p class="tq-muted">Try a threshold or flag policy on the last 90 days: nothing changes until an admin '
            'applies it with <code>tqs rules set</code> or <code>PUT /api/rules/{name}</code>.</p></section>',
            sizing_mode="stretch_width", stylesheets=STYLESHEETS, margin=(4, 10))
        controls = pn.FlexBox(self.rule, self.threshold, self.policy, flex_wrap="wrap", align_items="flex-end",
                              sizing_mode="stretch_width")
        return pn.Column(intro, self.settings, controls, self.preview, self.audit, sizing_mode="stretch_width",
                         css_classes=["tq-rules"], margin=(12, 10),
                         styles={"background": "#fff", "border": "1px solid #d9dee5", "border-radius": "10px"})


def render_settings(report: list[dict]) -> str:
    rows = []
    for entry in report:
        settings = entry.get("settings") or []
        shown = ", ".join(
            f'{esc(s["name"])} <b>{esc(_value(s["value"]))}</b>'
            + (' <span class="tq-badge tq-changed">set at runtime</span>' if s["source"] == "runtime" else "")
            for s in settings if s["name"] in ("threshold", "clear_threshold", "window_days", "flag_policy",
                                                "confidence", "min_sessions"))
        status = entry["status"] + (" (at runtime)" if entry.get("enabled_at_runtime") is not None else "")
        rows.append(f'<tr><th scope="row">{esc(entry["name"])}</th><td>{esc(status)}</td>'
                    f'<td>{shown or DASH}</td></tr>')
    return ('<div class="tq tq-scroll"><table class="tq-table" data-rules><caption class="tq-muted">Each rule now '
            f'</caption><thead><tr><th>Rule</th><th>Status</th><th>Settings</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def render_preview(result: Backtest) -> str:
    current, proposed = result.current, result.proposed
    changed = {k: v for k, v in proposed.settings.items() if current.settings.get(k) != v}
    what = ", ".join(f"{esc(k)} {esc(_value(current.settings.get(k)))} \u2192 {esc(_value(v))}"
                     for k, v in changed.items()) or "the current settings"
    rows = [("Flagged today (replayed)", len(current.flagged_now), len(proposed.flagged_now)),
            ("Flags raised in 90 days", current.raised, proposed.raised),
            ("Flags cleared in 90 days", current.cleared, proposed.cleared),
            ("Tutors flapping (raised 3+ times in 30 days)", len(current.flapping), len(proposed.flapping))]
    table = "".join(f'<tr><th scope="row" class="tq-wrap">{label}</th><td>{now}</td><td>{then}</td></tr>'
                    for label, now, then in rows)
    lists = "".join(
        f'<p><b>{title} ({len(tutors)}):</b> {_names(result, tutors)}</p>'
        for title, tutors in (("Would be newly flagged", result.newly_flagged),
                              ("Would no longer be flagged", result.no_longer_flagged)))
    return (f'<div class="tq tq-section" data-preview><h3>What if: {what}</h3>'
            f'<p class="tq-muted">{esc(result.rule)}, {plural(len(result.names), "tutor")}, '
            f'{result.first_day.day} {result.first_day:%b} to {result.last_day.day} {result.last_day:%b}, replayed in '
            f'{result.seconds:.1f} s. Nothing was changed. Flagged now by this rule, as scored: '
            f'{len(result.stored_flagged)}.</p>'
            f'<div class="tq-scroll"><table class="tq-table"><thead><tr><th></th><th>Now</th><th>Proposed</th></tr>'
            f'</thead><tbody>{table}</tbody></table></div>{lists}</div>')


def render_audit(changes: list) -> str:
    if not changes:
        return ('<div class="tq tq-section"><h3>Audit trail</h3><p class="tq-empty">No setting has been changed at '
                'runtime: every rule runs on its environment settings.</p></div>')
    rows = "".join(
        f'<tr><td>{moment(c.as_dict()["changed_at"])}</td><td>{esc(c.rule)}</td><td>{esc(c.name)}</td>'
        f'<td>{esc(c.old_value)} \u2192 {esc(c.new_value)}</td><td>{esc(c.changed_by)}</td><td>{esc(c.reason)}</td>'
        f'<td>{esc(c.rescore_state)}</td></tr>' for c in changes)
    return ('<div class="tq tq-section tq-scroll" data-audit><h3>Audit trail</h3><table class="tq-table"><thead><tr>'
            '<th>When (UTC)</th><th>Rule</th><th>Setting</th><th>Change</th><th>By</th><th>Reason</th>'
            f'<th>Rescore</th></tr></thead><tbody>{rows}</tbody></table></div>')


def _names(result: Backtest, tutors: list[str]) -> str:
    if not tutors:
        return '<span class="tq-muted">none</span>'
    shown = ", ".join(f'<a class="tq-tutor" href="?{esc(urlencode({"tutor": t}))}">{esc(result.names.get(t) or t)}</a>'
                      for t in tutors[:LISTED])
    return shown + (f" and {len(tutors) - LISTED} more" if len(tutors) > LISTED else "")


def _setting(entry: dict, name: str) -> dict | None:
    return next((s for s in entry.get("settings") or [] if s["name"] == name), None)


def _value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
