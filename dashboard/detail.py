"""One tutor's story: the numbers, each rule's rate over time, why they are flagged, and what to do.

Every loaded rule's rate, flag, explanation, insights and recommendations are shown the same
way, so a new rule appears here without a change to this module.
"""

from __future__ import annotations

import panel as pn
from panel.viewable import Viewer

from dashboard.charts import chart_legend, rate_chart
from dashboard.state import DashboardState
from dashboard.store import DashboardStore, Measure, TutorStory
from dashboard.text import FLAG_ICON, OK_ICON, day, esc, flag_badge, hours, interval, moment, percent, plural
from dashboard.theme import STYLESHEETS
from engine.explanations import counted, describe_explanation


class TutorDetail(Viewer):
    def __init__(self, store: DashboardStore, state: DashboardState, **params):
        super().__init__(**params)
        self._store, self._state = store, state
        self._chart_points: list | None = None
        html = dict(sizing_mode="stretch_width", stylesheets=STYLESHEETS, margin=(4, 10))
        self.close = pn.widgets.Button(label="\u2715 Close", color="light", width=90, align="start",
                                       description="Close the tutor detail")
        self.close.on_click(lambda _: setattr(state, "tutor", ""))
        self.head = pn.pane.HTML(**html)
        self.chart = pn.pane.HoloViews(None, sizing_mode="stretch_width", height=300, margin=(0, 10),
                                       linked_axes=False)
        self.chart_choice = pn.widgets.RadioButtonGroup(
            label="Chart", options={}, color="primary", variant="outline", margin=(4, 10), visible=False,
            description="Which rule's rate the chart shows")
        self.chart_choice.param.watch(lambda _: self._choosing or self._draw_chart(), "value")
        self._story: TutorStory | None = None
        self._choosing = False  # True while a new tutor's chart choice is set: draw once, after
        self.chart_caption = pn.pane.HTML(**html)
        self.body = pn.pane.HTML(**html)
        self.layout = pn.Column(
            pn.Row(self.head, self.close, sizing_mode="stretch_width"), self.chart_choice, self.chart,
            self.chart_caption, self.body,
            sizing_mode="stretch_width", visible=False, min_width=300, css_classes=["tq-detail"],
            styles={"background": "#fff", "border": "1px solid #d9dee5", "border-radius": "10px"},
        )
        state.param.watch(lambda _: self.refresh(), ["tutor"])
        self.refresh()

    def refresh(self) -> None:
        tutor_id = self._state.tutor
        if not tutor_id:
            self.layout.visible = False
            self._chart_points = None
            return
        story = self._store.tutor_story(tutor_id)
        with pn.io.hold():
            self.layout.visible = True
            if story is None:
                self.head.object = (f'<div class="tq"><h2>Unknown tutor</h2><p class="tq-notice">No tutor with id '
                                    f'<b>{esc(tutor_id)}</b> has sent a session yet.</p></div>')
                self.chart.visible = self.chart_caption.visible = self.body.visible = False
                return
            self.chart.visible = self.chart_caption.visible = self.body.visible = True
            self.head.object = render_head(story, self._store.measures)
            self._show_chart(story)
            self.body.object = render_body(story)

    def _show_chart(self, story: TutorStory) -> None:
        if story.points == self._chart_points:
            return  # unchanged: keep the chart as the admin left it
        self._chart_points, self._story = story.points, story
        measures = self._store.measures
        options = {m.rate.label.capitalize(): m.name for m in measures}
        chosen = first_concern(story, measures)
        self.chart_choice.visible = len(options) > 1
        self._choosing = True
        try:
            self.chart_choice.options = options
            self.chart_choice.value = chosen
        finally:
            self._choosing = False
        self._draw_chart()

    def _draw_chart(self) -> None:
        story = self._story
        measure = next((m for m in self._store.measures if m.name == self.chart_choice.value), None)
        chart = rate_chart(story.points, measure, threshold_of(story, measure)) if story and measure else None
        self.chart.object = chart
        self.chart.visible = chart is not None
        self.chart_caption.object = (
            f'<div class="tq">{chart_legend(threshold_of(story, measure))}<p class="tq-legend">'
            f'{esc(measure.rate.events_label.capitalize())} as a share of {esc(measure.rate.base_label)} over the '
            'last 90 days, one point a day; shaded: flagged by this rule.</p></div>' if chart is not None else "")

    def __panel__(self) -> pn.viewable.Viewable:
        return self.layout


def first_concern(story: TutorStory, measures: list[Measure]) -> str | None:
    """The rate to chart first: the flagged rule with the highest risk, else the first rule's."""
    flags = {flag["rule"]: flag for flag in story.detail["flags"]}
    flagged = [m for m in measures if flags.get(m.rule, {}).get("flagged")]
    candidates = sorted(flagged, key=lambda m: -flags[m.rule]["risk_score"]) or measures
    return candidates[0].name if candidates else None


def threshold_of(story: TutorStory | None, measure: Measure | None) -> float | None:
    """The rule's threshold as its latest explanation records it."""
    if story is None or measure is None:
        return None
    flag = next((f for f in story.detail["flags"] if f["rule"] == measure.rule), None)
    threshold = ((flag or {}).get("explanation") or {}).get("threshold")
    return float(threshold) if isinstance(threshold, int | float) else None


def render_head(story: TutorStory, measures: list[Measure]) -> str:
    detail = story.detail
    facts = []
    for measure in measures:
        days = measure.window_days
        rate = measure.rate.metric(days)
        low, high = detail.get(f"{rate}_low"), detail.get(f"{rate}_high")
        ci = f"<small>95% CI {interval(low, high)}</small>" if interval(low, high) else ""
        events, base = detail.get(measure.rate.events_metric(days)), detail.get(measure.rate.base_metric(days))
        count = (f"<small>{events} of {esc(counted(base, measure.rate.base_label))}</small>"
                 if base is not None and events is not None else "")
        facts.append(f'<div class="tq-fact" data-rate="{esc(measure.name)}" data-window="{days}">'
                     f'<dt>{days}-day {esc(measure.rate.label)}</dt><dd>{percent(detail.get(rate))}{ci}{count}</dd>'
                     '</div>')
    facts.append(f'<div class="tq-fact"><dt>Risk score</dt><dd>{detail["risk_score"]:.0f}<small>of 100</small></dd>'
                 f'</div>')
    name = detail["name"] or detail["tutor_id"]
    return (f'<div class="tq"><div class="tq-detail-head"><div><h2 data-tutor-id="{esc(detail["tutor_id"])}">'
            f'{esc(name)}</h2><span class="tq-muted">{esc(detail["tutor_id"])} \u00b7 updated '
            f'{moment(detail["updated_at"])}</span></div>{flag_badge(detail["flagged"])}</div>'
            f'<dl class="tq-facts">{"".join(facts)}</dl></div>')


def render_body(story: TutorStory) -> str:
    sections = [_why(story), _advice(story), _reschedules(story), _sessions(story), _events(story)]
    return f'<div class="tq">{"".join(sections)}</div>'


def _section(title: str, content: str, name: str) -> str:
    return f'<section class="tq-section" data-section="{name}"><h3>{title}</h3>{content}</section>'


def _items(lines: list[str], empty: str) -> str:
    if not lines:
        return f'<p class="tq-empty">{empty}</p>'
    return "<ul>" + "".join(f"<li>{esc(line)}</li>" for line in lines) + "</ul>"


def _why(story: TutorStory) -> str:
    lines = []
    for flag in story.detail["flags"]:
        state = (f'<span class="tq-raised">{FLAG_ICON} flagged</span>' if flag["flagged"]
                 else f'<span class="tq-cleared">{OK_ICON} not flagged</span>')
        stale = (f' <span class="tq-stale">Not updated since {moment(flag["as_of"])}: the rule failed '
                 f'({esc(flag["error"])}).</span>' if flag.get("stale") else "")
        lines.append(f'<li data-rule="{esc(flag["rule"])}"><b>{esc(flag["rule"])}</b> {esc(flag["rule_version"])}: '
                     f'{state}. {esc(describe_explanation(flag["explanation"] or {}))}{stale}</li>')
    content = f"<ul>{''.join(lines)}</ul>" if lines else '<p class="tq-empty">No rule has scored this tutor.</p>'
    return _section("Why", content, "why")


def _advice(story: TutorStory) -> str:
    detail = story.detail
    return (_section("What the numbers show", _items(detail["insights"], "Nothing stands out."), "insights")
            + _section("What to do", _items(detail["recommendations"], "No action needed."), "recommendations"))


def _reschedules(story: TutorStory) -> str:
    rows = story.detail["recent_reschedules"]
    if not rows:
        return _section("Recent reschedules", '<p class="tq-empty">No reschedules.</p>', "reschedules")
    body = "".join(
        f"<tr><td>{moment(r['original_time'])}</td><td>{moment(r['new_time'])}</td><td>{esc(r['initiator'])}</td>"
        f"<td>{esc(r['reason'] or '')}</td><td>{hours(r['notice_hours'])}</td></tr>" for r in rows)
    table = ('<div class="tq-scroll"><table class="tq-table"><thead><tr><th scope="col">Was</th>'
             '<th scope="col">Moved to</th><th scope="col">By</th><th scope="col">Reason</th>'
             f'<th scope="col">Notice</th></tr></thead><tbody>{body}</tbody></table></div>')
    return _section(f"Recent reschedules (last {len(rows)})", table, "reschedules")


def _sessions(story: TutorStory) -> str:
    summary = story.detail["session_summary"]
    total = summary["total"] or 1
    parts = [("c", "completed", summary["completed"]), ("r", "rescheduled", summary["rescheduled"]),
             ("n", "no-show", summary["no_show"])]
    bar = "".join(f'<span class="{css}" style="width:{100 * n / total:.1f}%"></span>' for css, _, n in parts)
    mix = [(n, f"{label} ({100 * n / total:.0f}%)") for _, label, n in parts]
    spoken = ", ".join(f"{n} {label}" for n, label in mix)
    shown = " \u00b7 ".join(f"<b>{n}</b> {label}" for n, label in mix)
    weeks = story.weeks
    peak = max((w["sessions"] for w in weeks), default=0) or 1
    bars = "".join(f'<span style="height:{100 * w["sessions"] / peak:.0f}%" title="{w["sessions"]} sessions, week '
                   f'of {day(w["week_start"])}"></span>' for w in weeks)
    average = sum(w["sessions"] for w in weeks) / len(weeks)
    span = f'first {day(summary["first_session_at"])}, last {day(summary["last_session_at"])}'
    content = (
        f'<p class="tq-legend">{plural(summary["total"], "session")} in all, {span}</p>'
        f'<div class="tq-mix" role="img" aria-label="{spoken}">{bar}</div><p class="tq-legend">{shown}</p>'
        f'<p class="tq-legend">Sessions per week, last {len(weeks)} weeks: <b>{average:.1f}</b> on average</p>'
        f'<div class="tq-weeks" role="img" aria-label="Sessions per week, oldest first: '
        f'{", ".join(str(w["sessions"]) for w in weeks)}">{bars}</div>'
        f'<div class="tq-weeks-axis"><span>{day(weeks[0]["week_start"])}</span>'
        f'<span>{day(weeks[-1]["week_end"])}</span></div>')
    return _section("Sessions", content, "sessions")


def _events(story: TutorStory) -> str:
    if not story.risk_events:
        return _section("Flag history", '<p class="tq-empty">Never flagged.</p>', "events")
    lines = []
    for event in reversed(story.risk_events):
        raised = event["kind"] == "raised"
        what = (f'<span class="tq-raised">{FLAG_ICON} Raised</span>' if raised
                else f'<span class="tq-cleared">{OK_ICON} Cleared</span>')
        lines.append(f'<li>{day(event["date"])}: {what} by {esc(event["rule"])}. '
                     f'{esc(describe_explanation(event["explanation"] or {}))}</li>')
    return _section("Flag history", f"<ul>{''.join(lines)}</ul>", "events")
