"""The tables. Every datetime column holds UTC; Python sees timezone-aware values.

Derived tables (daily counts, metrics, scores, snapshots, risk events) can all be
rebuilt from ``sessions`` and ``reschedules``; they exist so that reading and
scoring stay cheap as history grows.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import peewee

from engine.personal import SealedJSONField, SealedTextField

database_proxy = peewee.DatabaseProxy()


class UTCDateTimeField(peewee.DateTimeField):
    """Stores naive UTC, hands back aware UTC; naive input is read as UTC."""

    def db_value(self, value: Any) -> Any:
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return super().db_value(value)

    def python_value(self, value: Any) -> Any:
        value = super().python_value(value)
        if isinstance(value, dt.datetime):
            value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
        return value


class JSONField(peewee.TextField):
    """JSON kept as text, so SQLite and Postgres behave the same."""

    def db_value(self, value: Any) -> Any:
        return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))

    def python_value(self, value: Any) -> Any:
        return None if value is None else json.loads(value)


class BaseModel(peewee.Model):
    class Meta:
        database = database_proxy
        legacy_table_names = False


class Tutor(BaseModel):
    """A tutor and their current overall standing (any rule flagged, highest risk)."""

    tutor_id = peewee.CharField(max_length=128, primary_key=True)
    name = peewee.CharField(max_length=200, null=True)
    flagged = peewee.BooleanField(default=False)
    risk_score = peewee.DoubleField(default=0.0)
    scored_at = UTCDateTimeField(null=True)
    # Last day with a stored snapshot; a late session recomputes from here or earlier.
    series_through = peewee.DateField(null=True)
    created_at = UTCDateTimeField()
    # The latest settings change its scores reflect: the next rescore names any newer change on its flags.
    settings_version = peewee.IntegerField(default=0, constraints=[peewee.SQL("DEFAULT 0")])
    # Its sessions over all time, moved with its daily counts by the statement that locks this row when a
    # batch is stored: reading them costs this row however long the history.
    total_sessions = peewee.IntegerField(default=0, constraints=[peewee.SQL("DEFAULT 0")])
    total_completed = peewee.IntegerField(default=0, constraints=[peewee.SQL("DEFAULT 0")])
    total_rescheduled = peewee.IntegerField(default=0, constraints=[peewee.SQL("DEFAULT 0")])
    total_no_shows = peewee.IntegerField(default=0, constraints=[peewee.SQL("DEFAULT 0")])

    class Meta:
        table_name = "tutors"


# Each sort of the tutor list reads one of these from either end: the descending order of a column is
# its ascending order reversed, ties by id included (engine.queries.TUTOR_ORDERS).
TUTOR_INDEXES = (
    Tutor.index(Tutor.risk_score.desc(), Tutor.tutor_id, name="tutors_risk_score_desc_tutor_id"),
    Tutor.index(Tutor.flagged.desc(), Tutor.risk_score.desc(), Tutor.tutor_id,
                name="tutors_flagged_desc_risk_score_desc_tutor_id"),
    Tutor.index(Tutor.name, Tutor.tutor_id, name="tutors_name_tutor_id"),
    Tutor.index(Tutor.scored_at, Tutor.tutor_id, name="tutors_scored_at_tutor_id"),
)
for _index in TUTOR_INDEXES:
    Tutor.add_index(_index)


class Session(BaseModel):
    session_id = peewee.CharField(max_length=128, primary_key=True)
    tutor = peewee.ForeignKeyField(Tutor, column_name="tutor_id", backref="sessions", on_delete="CASCADE")
    student_id = peewee.CharField(max_length=128)
    student_name = SealedTextField(null=True)  # personal data: sealed at rest (engine.personal)
    scheduled_time = UTCDateTimeField()
    completed_time = UTCDateTimeField(null=True)
    status = peewee.CharField(max_length=16)
    subject = peewee.CharField(max_length=200, null=True)
    duration_minutes = peewee.IntegerField(null=True)
    is_first_session = peewee.BooleanField(null=True)
    fingerprint = peewee.CharField(max_length=64)
    received_at = UTCDateTimeField()
    updated_at = UTCDateTimeField()

    class Meta:
        table_name = "sessions"
        indexes = ((("tutor", "scheduled_time"), False),)


class Reschedule(BaseModel):
    """One reschedule of a session, with the notice it gave and the delay it caused."""

    session = peewee.ForeignKeyField(
        Session, column_name="session_id", primary_key=True, backref="reschedule", on_delete="CASCADE"
    )
    tutor = peewee.ForeignKeyField(Tutor, column_name="tutor_id", on_delete="CASCADE")
    initiator = peewee.CharField(max_length=16)
    reason = SealedTextField(null=True)  # free text, personal data: sealed at rest
    original_time = UTCDateTimeField()
    new_time = UTCDateTimeField(null=True)
    requested_at = UTCDateTimeField(null=True)
    notice_seconds = peewee.BigIntegerField(null=True)
    delay_seconds = peewee.BigIntegerField(null=True)

    class Meta:
        table_name = "reschedules"
        indexes = ((("tutor", "original_time"), False),)


class TutorDailyCount(BaseModel):
    """Per tutor and UTC day of ``scheduled_time``: any window is a sum of at most 90 of these."""

    tutor = peewee.ForeignKeyField(Tutor, column_name="tutor_id", on_delete="CASCADE")
    day = peewee.DateField()
    sessions = peewee.IntegerField(default=0)
    completed = peewee.IntegerField(default=0)
    no_shows = peewee.IntegerField(default=0)
    rescheduled = peewee.IntegerField(default=0)
    tutor_reschedules = peewee.IntegerField(default=0)
    student_reschedules = peewee.IntegerField(default=0)
    first_sessions = peewee.IntegerField(default=0)
    # A database default too, so a worker still on the code before these columns can insert rows.
    first_session_no_shows = peewee.IntegerField(default=0, constraints=[peewee.SQL("DEFAULT 0")])
    first_session_tutor_reschedules = peewee.IntegerField(default=0, constraints=[peewee.SQL("DEFAULT 0")])

    class Meta:
        table_name = "tutor_daily_counts"
        primary_key = peewee.CompositeKey("tutor", "day")


class TutorScore(BaseModel):
    """Current verdict of one rule for one tutor, with the explanation behind it."""

    tutor = peewee.ForeignKeyField(Tutor, column_name="tutor_id", on_delete="CASCADE")
    rule = peewee.CharField(max_length=64)
    rule_version = peewee.CharField(max_length=32)
    flagged = peewee.BooleanField(default=False)
    severity = peewee.CharField(max_length=16, default="none")
    risk_score = peewee.DoubleField(default=0.0)
    explanation = JSONField()
    insights = SealedJSONField()  # a rule's insight may quote a student's reason: sealed at rest
    recommendations = SealedJSONField()
    as_of = UTCDateTimeField()

    class Meta:
        table_name = "tutor_scores"
        primary_key = peewee.CompositeKey("tutor", "rule")
        indexes = ((("rule", "flagged"), False),)


class RuleFailure(BaseModel):
    """A rule that raised while scoring a tutor; its previous result is kept until it scores the tutor again."""

    tutor = peewee.ForeignKeyField(Tutor, column_name="tutor_id", on_delete="CASCADE")
    rule = peewee.CharField(max_length=64)
    rule_version = peewee.CharField(max_length=32)
    error = peewee.TextField()
    from_day = peewee.DateField()  # the first day it missed: its next successful rescore starts there
    failed_at = UTCDateTimeField()

    class Meta:
        table_name = "rule_failures"
        primary_key = peewee.CompositeKey("tutor", "rule")


class TutorMetric(BaseModel):
    """One current metric value (e.g. ``sessions_30d``), kept in rows so any metric sorts and filters."""

    tutor = peewee.ForeignKeyField(Tutor, column_name="tutor_id", on_delete="CASCADE")
    name = peewee.CharField(max_length=64)
    rule = peewee.CharField(max_length=64)
    value = peewee.DoubleField(null=True)

    class Meta:
        table_name = "tutor_metrics"
        primary_key = peewee.CompositeKey("tutor", "name")
        indexes = ((("name", "value", "tutor"), False),)  # a page sorted by a metric reads only its rows


class TutorMetricSet(BaseModel):
    """Every current metric value of a tutor in one row, by the rule that owns it (``{rule: {name: value}}``):
    what scoring compares a rescore's values with, and what a page of tutors reads, a row per tutor rather
    than one per value (500 tutors hold some 21,000). ``tutor_metrics`` holds the same values a row each,
    to sort and filter by."""

    tutor = peewee.ForeignKeyField(Tutor, column_name="tutor_id", primary_key=True, on_delete="CASCADE")
    metrics = JSONField()

    class Meta:
        table_name = "tutor_metric_sets"


class ScoreSnapshot(BaseModel):
    """A tutor's metrics and flags as of the end of one UTC day (or as of now, for today)."""

    tutor = peewee.ForeignKeyField(Tutor, column_name="tutor_id", on_delete="CASCADE")
    day = peewee.DateField()
    as_of = UTCDateTimeField()
    metrics = JSONField()
    flags = JSONField()
    flagged = peewee.BooleanField(default=False)

    class Meta:
        table_name = "score_snapshots"
        primary_key = peewee.CompositeKey("tutor", "day")


class RiskEvent(BaseModel):
    """A flag raised or cleared, on the event-time day it happened, with the reason recorded."""

    id = peewee.AutoField()
    tutor = peewee.ForeignKeyField(Tutor, column_name="tutor_id", on_delete="CASCADE")
    rule = peewee.CharField(max_length=64)
    kind = peewee.CharField(max_length=16)
    day = peewee.DateField()
    occurred_at = UTCDateTimeField()
    severity = peewee.CharField(max_length=16, default="none")
    explanation = JSONField()
    recorded_at = UTCDateTimeField()

    class Meta:
        table_name = "risk_events"
        # (tutor, rule, day, id): each rule's last event before a day, found from the index's end
        indexes = ((("tutor", "day", "rule", "kind"), True), (("occurred_at",), False),
                   (("tutor", "rule", "day", "id"), False))


class EmailReport(BaseModel):
    """A report to admins and its delivery state: one per processed session (per fingerprint), per change
    of a tutor's flag, or per daily digest, as ``TQS_EMAIL_POLICY`` asks.

    ``report_key`` names what the report is about, so a re-posted session or a retried task finds
    the report that exists instead of making a second one. Session reports are written in the
    transaction that stores the session, and sent once the tutor's rescore has taken it in.
    """

    id = peewee.AutoField()
    kind = peewee.CharField(max_length=16)  # session | state_change | digest
    report_key = peewee.CharField(max_length=400, unique=True)
    session_id = peewee.CharField(max_length=128, null=True)
    tutor_id = peewee.CharField(max_length=128, null=True)
    fingerprint = peewee.CharField(max_length=64, null=True)
    flagged = peewee.BooleanField(null=True)  # state_change: the state reported
    facts = JSONField(null=True)  # digest: the tutors flagged when it was made, to tell the next one what changed
    recipients = JSONField()
    subject = peewee.CharField(max_length=400, null=True)
    status = peewee.CharField(max_length=16, default="pending")  # pending | sent | failed | skipped
    attempts = peewee.IntegerField(default=0)
    last_error = peewee.TextField(null=True)
    message_id = peewee.CharField(max_length=300, null=True)
    created_at = UTCDateTimeField()
    queued_at = UTCDateTimeField(null=True)
    claimed_until = UTCDateTimeField(null=True)
    claim_token = peewee.CharField(max_length=32, null=True)  # who holds the claim: only they may renew or finish
    sent_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "email_reports"
        indexes = ((("status", "created_at"), False), (("tutor_id", "status"), False))


class EmailDelivery(BaseModel):
    """One recipient of one report. ``sending`` is written before the message goes out and ``sent``
    after, so a crash in between is seen on retry (the resend carries the same Message-ID)."""

    report = peewee.ForeignKeyField(EmailReport, column_name="report_id", on_delete="CASCADE")
    recipient = peewee.CharField(max_length=320)
    status = peewee.CharField(max_length=16)  # sending | sent | refused
    attempts = peewee.IntegerField(default=0)
    response = peewee.TextField(null=True)
    sent_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "email_deliveries"
        primary_key = peewee.CompositeKey("report", "recipient")


class InboxItem(BaseModel):
    """A session record as accepted by the API, kept until a worker has stored it.

    Written in the transaction that decides the 202, so nothing accepted is lost when the
    queue or a worker dies; the worker marks it processed in the transaction that stores it.
    """

    id = peewee.BigAutoField()
    session_id = peewee.CharField(max_length=128, index=True)
    tutor_id = peewee.CharField(max_length=128)
    payload = JSONField()
    status = peewee.CharField(max_length=16, default="pending")  # pending | processed | superseded | failed
    attempts = peewee.IntegerField(default=0)
    last_error = peewee.TextField(null=True)
    received_at = UTCDateTimeField()
    enqueued_at = UTCDateTimeField(null=True)
    processed_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "inbox"
        indexes = ((("status", "received_at"), False),)


class RescoreWaiting(BaseModel):
    """A tutor whose stored sessions changed since its last rescore, from the earliest day touched.

    Written in the transaction that stores the sessions, so a rescore is never lost; a tutor
    touched many times while waiting is rescored once. The rescore deletes the row under the
    tutor's lock. A worker claims rows by setting ``claimed_until`` (a lease: a worker that dies
    lets it lapse); after a failure it holds the retry pause.
    """

    tutor = peewee.ForeignKeyField(Tutor, column_name="tutor_id", primary_key=True, on_delete="CASCADE")
    from_day = peewee.DateField()
    waiting_since = UTCDateTimeField(index=True)
    claimed_until = UTCDateTimeField(null=True)
    attempts = peewee.IntegerField(default=0)
    last_error = peewee.TextField(null=True)

    class Meta:
        table_name = "rescore_waiting"


class RuleSettingValue(BaseModel):
    """A rule setting changed at runtime (``enabled`` included): it overrides the environment's value."""

    rule = peewee.CharField(max_length=64)
    name = peewee.CharField(max_length=64)
    value = peewee.TextField()
    changed_at = UTCDateTimeField()

    class Meta:
        table_name = "rule_setting_values"
        primary_key = peewee.CompositeKey("rule", "name")


class SettingsChange(BaseModel):
    """The audit trail: one row per setting changed, who changed it, why, and the rescore that followed."""

    id = peewee.AutoField()
    rule = peewee.CharField(max_length=64)
    name = peewee.CharField(max_length=64)
    old_value = peewee.TextField()
    new_value = peewee.TextField()
    changed_by = peewee.CharField(max_length=200)
    changed_at = UTCDateTimeField()
    reason = peewee.TextField()
    batch = peewee.IntegerField()  # the changes made together share the id of the first
    rescore_total = peewee.IntegerField(null=True)
    rescore_done = peewee.IntegerField(default=0)
    rescore_updated_at = UTCDateTimeField(null=True)  # its last progress: a stalled rescore is swept again
    rescore_finished_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "settings_changes"
        indexes = ((("rule", "id"), False),)


class ApiKey(BaseModel):
    """A named API key: only its SHA-256 is kept (the key is random, so no slow hash is needed)."""

    name = peewee.CharField(max_length=64, unique=True)
    scope = peewee.CharField(max_length=16)  # ingest | read | admin
    key_hash = peewee.CharField(max_length=64, unique=True)
    created_at = UTCDateTimeField()
    revoked_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "api_keys"


class RateLimitWindow(BaseModel):
    """Requests one key made in one fixed window, where there is no Redis to count them."""

    key_name = peewee.CharField(max_length=64)
    window_start = peewee.BigIntegerField()  # the window's number: epoch seconds // its length
    requests = peewee.IntegerField()

    class Meta:
        table_name = "rate_limit_windows"
        primary_key = peewee.CompositeKey("key_name", "window_start")


class SchemaMigration(BaseModel):
    version = peewee.IntegerField(primary_key=True)
    name = peewee.CharField(max_length=200)
    applied_at = UTCDateTimeField()

    class Meta:
        table_name = "schema_migrations"


MODELS = [
    Tutor,
    Session,
    Reschedule,
    TutorDailyCount,
    TutorScore,
    RuleFailure,
    TutorMetric,
    TutorMetricSet,
    ScoreSnapshot,
    RiskEvent,
    EmailReport,
    EmailDelivery,
    InboxItem,
    RescoreWaiting,
    RuleSettingValue,
    SettingsChange,
    ApiKey,
    RateLimitWindow,
]
