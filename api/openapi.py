"""The OpenAPI 3 document, built from the loaded rules so a plugin's metrics are documented too.

Kept honest by a schemathesis run against the live app in the test suite.
"""

from __future__ import annotations

from typing import Any

import falcon

from engine import queries
from engine.inbox import MAX_BATCH
from engine.rulekit import MetricNames
from engine.rulestore import MAX_REASON as MAX_CHANGE_REASON
from engine.validation import (
    INITIATORS,
    MAX_DURATION_MINUTES,
    MAX_ID_LENGTH,
    MAX_NAME_LENGTH,
    MAX_REASON_LENGTH,
    STATUSES,
)

NULLABLE_TEXT = {"type": "string", "nullable": True}
DATETIME = {"type": "string", "description": "ISO 8601; without a zone it is read as UTC"}
IDENTIFIER = {"type": "string", "maxLength": MAX_ID_LENGTH,
              "description": "no control characters (other text: none but tabs and line breaks); a whole number "
                             "is accepted too, read as its digits"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(description: str, schema: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _session_schema() -> dict[str, Any]:
    text = lambda n: {"type": "string", "maxLength": n}  # noqa: E731
    return {
        "type": "object",
        "required": ["session_id", "tutor_id", "student_id", "scheduled_time", "status"],
        "properties": {
            "session_id": IDENTIFIER, "tutor_id": IDENTIFIER, "student_id": IDENTIFIER,
            "scheduled_time": DATETIME, "completed_time": {**DATETIME, "nullable": True},
            "status": {"type": "string", "enum": list(STATUSES)},
            "tutor_name": {**text(MAX_NAME_LENGTH), "nullable": True},
            "student_name": {**text(MAX_NAME_LENGTH), "nullable": True},
            "subject": {**text(MAX_NAME_LENGTH), "nullable": True},
            "duration_minutes": {"type": "integer", "minimum": 0, "maximum": MAX_DURATION_MINUTES, "nullable": True},
            "is_first_session": {"type": "boolean", "nullable": True},
            "reschedule_info": {
                "type": "object", "nullable": True,
                "description": "required when status is rescheduled, and only then",
                "required": ["initiator"],
                "properties": {
                    "initiator": {"type": "string", "enum": list(INITIATORS)},
                    "reason": {**text(MAX_REASON_LENGTH), "nullable": True},
                    "original_time": {**DATETIME, "nullable": True, "description": "defaults to scheduled_time"},
                    "new_time": {**DATETIME, "nullable": True},
                    "requested_at": {**DATETIME, "nullable": True},
                },
            },
        },
    }


def _tutor_record(metric_names: MetricNames) -> dict[str, Any]:
    properties: dict[str, Any] = {"tutor_id": {"type": "string"}, "name": NULLABLE_TEXT}
    for name in metric_names:
        properties[name] = {"type": "integer" if name in metric_names.counts else "number", "nullable": True}
    properties.update({
        "flagged": {"type": "boolean"},
        "flagged_by": {"type": "array", "items": {"type": "string"}, "description": "the rules that flag the tutor"},
        "risk_score": {"type": "number", "minimum": 0, "maximum": 100},
        "updated_at": {"type": "string", "nullable": True},
    })
    return {"type": "object", "required": list(properties), "properties": properties}


def build_document(metric_names: MetricNames) -> dict[str, Any]:
    auth = [{"bearer": []}, {"apiKey": []}]
    bad_request = _error("Malformed JSON, failed validation (every bad field named) or a bad parameter")
    unauthorized = _error("Missing, unknown or revoked API key")
    forbidden = _error("The key's scope does not allow this (ingest, read or admin)")
    unavailable = _error("The database is unreachable; nothing was stored (see Retry-After)")
    tutor_id = {"name": "tutor_id", "in": "path", "required": True, "schema": {"type": "string"}}
    rule_name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    sort_fields = queries.sortable_fields(metric_names)
    return {
        "openapi": "3.0.3",
        "info": {"title": "Tutor Quality API", "version": "1.0.0",
                 "description": "Ingest finished sessions; read tutor reliability scores, flags and history."},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
            "schemas": {
                "Session": _session_schema(),
                "Accepted": {"type": "object", "required": ["accepted", "session_ids"], "properties": {
                    "accepted": {"type": "integer"}, "session_ids": {"type": "array", "items": {"type": "string"}}}},
                "TutorRecord": _tutor_record(metric_names),
                "TutorList": {"type": "object", "required": ["tutors", "total"], "properties": {
                    "tutors": {"type": "array", "items": {"$ref": "#/components/schemas/TutorRecord"}},
                    "total": {"type": "integer", "minimum": 0}}},
                "TutorDetail": {"allOf": [{"$ref": "#/components/schemas/TutorRecord"}, {
                    "type": "object",
                    "required": ["flags", "insights", "recommendations", "recent_reschedules", "session_summary"],
                    "properties": {
                        "flags": {"type": "array", "items": {"$ref": "#/components/schemas/RuleFlag"}},
                        "insights": {"type": "array", "items": {"type": "string"}},
                        "recommendations": {"type": "array", "items": {"type": "string"}},
                        "recent_reschedules": {"type": "array", "items": {"type": "object"}},
                        "session_summary": {"type": "object"},
                    }}]},
                "RuleFlag": {"type": "object", "required": ["rule", "rule_version", "flagged", "severity", "risk_score",
                                                            "explanation", "stale"], "properties": {
                    "rule": {"type": "string"}, "rule_version": {"type": "string"}, "flagged": {"type": "boolean"},
                    "severity": {"type": "string", "enum": ["none", "low", "medium", "high"]},
                    "risk_score": {"type": "number", "minimum": 0, "maximum": 100},
                    "explanation": {"type": "object"}, "as_of": {"type": "string", "nullable": True},
                    "stale": {"type": "boolean", "description": "the rule failed lately: this is its last result"},
                    "error": {"type": "string"}, "failing_since": {"type": "string", "nullable": True}}},
                "History": {"type": "object", "required": ["tutor_id", "days", "points", "events"], "properties": {
                    "tutor_id": {"type": "string"}, "days": {"type": "integer"},
                    "points": {"type": "array", "items": {"type": "object", "required": ["date", "flagged"]}},
                    "events": {"type": "array", "items": {"type": "object", "required": ["type", "at"]}}}},
                "Health": {"type": "object", "required": ["status", "database", "queue"], "properties": {
                    "status": {"type": "string", "enum": ["ok", "degraded", "unavailable"]},
                    "database": {"type": "object"}, "queue": {"type": "object"},
                    "rules": {"type": "object", "description": "each installed rule: status (loaded, disabled, "
                              "failed), version, error, and the tutors it is failing on",
                              "additionalProperties": {"type": "object", "required": ["status"], "properties": {
                                  "status": {"type": "string"}, "version": {"type": "string", "nullable": True},
                                  "error": {"type": "string"}, "failing": {"type": "object"}}}},
                    "backlog": {
                        "type": "object", "properties": {
                            "pending": {"type": "integer"}, "failed": {"type": "integer"},
                            "oldest_pending_age_seconds": {"type": "number", "nullable": True},
                            "rescore": {"type": "object", "properties": {
                                "tutors_waiting": {"type": "integer"},
                                "oldest_waiting_seconds": {"type": "number", "nullable": True},
                                "tutors_failing": {"type": "integer"}}},
                            "emails": {"type": "object", "properties": {
                                "unsent": {"type": "integer"},
                                "oldest_unsent_seconds": {"type": "number", "nullable": True},
                                "failed": {"type": "integer"}}}}}}},
                "Rule": {"type": "object", "required": ["name", "status", "source"], "properties": {
                    "name": {"type": "string"}, "status": {"type": "string", "enum": ["loaded", "disabled", "failed"]},
                    "version": {"type": "string", "nullable": True}, "source": {"type": "string"},
                    "enabled_at_runtime": {"type": "boolean", "nullable": True}, "error": {"type": "string"},
                    "description": {"type": "string"}, "module": {"type": "string"},
                    "settings": {"type": "array", "items": {"type": "object", "required": [
                        "name", "variable", "value", "default", "source"], "properties": {
                        "name": {"type": "string"}, "variable": {"type": "string"},
                        "source": {"type": "string", "enum": ["runtime", "environment", "default"]},
                        "description": {"type": "string"}}}},
                    "outdated_tutors": {"type": "integer"}, "failing": {"type": "object"}}},
                "RuleList": {"type": "object", "required": ["rules"], "properties": {
                    "rules": {"type": "array", "items": {"$ref": "#/components/schemas/Rule"}}}},
                "SettingsChange": {"type": "object", "required": [
                    "id", "batch", "rule", "setting", "old_value", "new_value", "changed_by", "changed_at", "reason",
                    "rescore"], "properties": {
                    "id": {"type": "integer"}, "batch": {"type": "integer"}, "rule": {"type": "string"},
                    "setting": {"type": "string"}, "old_value": {"type": "string"}, "new_value": {"type": "string"},
                    "changed_by": {"type": "string"}, "changed_at": {"type": "string"}, "reason": {"type": "string"},
                    "rescore": {"type": "object", "properties": {
                        "total": {"type": "integer", "nullable": True}, "done": {"type": "integer"},
                        "finished_at": {"type": "string", "nullable": True}}}}},
                "RuleChange": {"type": "object", "required": ["settings", "reason"],
                               "additionalProperties": False, "properties": {
                    "settings": {"type": "object", "minProperties": 1,
                                 "description": "setting name to new value (null: back to the environment's); "
                                                "enabled switches the rule on or off",
                                 "additionalProperties": {"nullable": True, "oneOf": [
                                     {"type": "number"}, {"type": "string"}, {"type": "boolean"}]}},
                    "reason": {"type": "string", "minLength": 1, "maxLength": MAX_CHANGE_REASON},
                    "changed_by": {"type": "string", "maxLength": 100,
                                   "description": "who, as the audit trail shows it beside the key"}}},
                "RuleChanged": {"type": "object", "required": ["rule", "changes", "rescore"], "properties": {
                    "rule": {"$ref": "#/components/schemas/Rule"},
                    "changes": {"type": "array", "items": {"$ref": "#/components/schemas/SettingsChange"}},
                    "rescore": {"type": "object", "nullable": True}}},
                "RuleHistory": {"type": "object", "required": ["rule", "changes"], "properties": {
                    "rule": {"type": "string"},
                    "changes": {"type": "array", "items": {"$ref": "#/components/schemas/SettingsChange"}}}},
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["status", "title"], "properties": {
                        "status": {"type": "integer"}, "title": {"type": "string"}, "message": {"type": "string"},
                        "errors": {"type": "array", "items": {"type": "object", "properties": {
                            "index": {"type": "integer", "nullable": True}, "field": {"type": "string"},
                            "message": {"type": "string"}}}}}}}},
            },
        },
        "paths": {
            "/api/sessions": {"post": {
                "summary": f"Ingest one session or an array of up to {MAX_BATCH}",
                "security": auth,
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
                    {"$ref": "#/components/schemas/Session"},
                    {"type": "array", "minItems": 1, "maxItems": MAX_BATCH,
                     "items": {"$ref": "#/components/schemas/Session"}}]}}}},
                "responses": {
                    "202": _ok("Stored durably and queued for scoring", "Accepted"),
                    "400": bad_request, "401": unauthorized, "403": forbidden,
                    "413": _error("Body above the size limit"), "415": _error("Body is not application/json"),
                    "429": _error("Over this key's request limit (TQS_INGEST_RATE_LIMIT); nothing was stored "
                                  "(see Retry-After)"),
                    "503": unavailable,
                },
            }},
            "/api/tutors": {"get": {
                "summary": "Tutors with their scores: filtered, searched, sorted and paged",
                "security": auth,
                "parameters": [
                    {"name": "flagged", "in": "query", "schema": {"type": "boolean"}},
                    {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": queries.MAX_SEARCH},
                     "description": "matches tutor id or name"},
                    {"name": "sort", "in": "query", "schema": {"type": "string", "enum": [
                        *sort_fields, *("-" + field for field in sort_fields)]}},
                    {"name": "limit", "in": "query",
                     "schema": {"type": "integer", "minimum": 1, "maximum": queries.MAX_PAGE,
                                "default": queries.DEFAULT_PAGE}},
                    {"name": "offset", "in": "query",
                     "schema": {"type": "integer", "minimum": 0, "maximum": queries.MAX_OFFSET, "default": 0}},
                ],
                "responses": {"200": _ok("A page of tutors", "TutorList"), "400": bad_request,
                              "401": unauthorized, "403": forbidden, "503": unavailable},
            }},
            "/api/tutors/{tutor_id}": {"get": {
                "summary": "One tutor: record, every rule's flag, insights, recommendations, recent reschedules",
                "security": auth, "parameters": [tutor_id],
                "responses": {"200": _ok("The tutor", "TutorDetail"), "401": unauthorized, "403": forbidden,
                              "404": _error("Unknown tutor"), "503": unavailable},
            }},
            "/api/tutors/{tutor_id}/history": {"get": {
                "summary": "One point per day for the last `days` days, with reschedule and risk events",
                "security": auth,
                "parameters": [tutor_id, {"name": "days", "in": "query", "schema": {
                    "type": "integer", "minimum": 1, "maximum": queries.MAX_HISTORY_DAYS,
                    "default": queries.DEFAULT_HISTORY_DAYS}}],
                "responses": {"200": _ok("The history", "History"), "400": bad_request, "401": unauthorized,
                              "403": forbidden, "404": _error("Unknown tutor"), "503": unavailable},
            }},
            "/api/rules": {"get": {
                "summary": "Every installed rule: status, version and each setting's value and where it comes from",
                "security": auth,
                "responses": {"200": _ok("The rules", "RuleList"), "401": unauthorized, "403": forbidden,
                              "503": unavailable},
            }},
            "/api/rules/{name}": {
                "get": {"summary": "One rule", "security": auth, "parameters": [rule_name],
                        "responses": {"200": _ok("The rule", "Rule"), "401": unauthorized, "403": forbidden,
                                      "404": _error("Unknown rule"), "503": unavailable}},
                "put": {"summary": "Change some of a rule's settings (an admin key only): checked, stored, audited, "
                                   "then every tutor is rescored from now on",
                        "security": auth, "parameters": [rule_name],
                        "requestBody": {"required": True, "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/RuleChange"}}}},
                        "responses": {"200": _ok("Changed (changes is empty when nothing changed)", "RuleChanged"),
                                      "400": bad_request, "401": unauthorized,
                                      "403": _error("Only an admin key may change settings"),
                                      "404": _error("Unknown rule"), "413": _error("Body above the size limit"),
                                      "415": _error("Body is not application/json"), "503": unavailable}},
            },
            "/api/rules/{name}/history": {"get": {
                "summary": "The audit trail of a rule's settings, newest first, with each change's rescore progress",
                "security": auth,
                "parameters": [rule_name, {"name": "limit", "in": "query", "schema": {
                    "type": "integer", "minimum": 1, "maximum": 1000, "default": 200}}],
                "responses": {"200": _ok("The changes", "RuleHistory"), "400": bad_request, "401": unauthorized,
                              "403": forbidden, "404": _error("Unknown rule"), "503": unavailable},
            }},
            "/api/health": {"get": {
                "summary": "Liveness, database and queue reachability, processing backlog", "security": [],
                "responses": {"200": _ok("Reachable (status ok or degraded)", "Health"),
                              "503": _ok("Database unreachable", "Health")},
            }},
            "/api/openapi.json": {"get": {
                "summary": "This document", "security": [],
                "responses": {"200": {"description": "OpenAPI 3 document",
                                      "content": {"application/json": {"schema": {"type": "object"}}}}},
            }},
        },
    }


class OpenApiResource:
    auth_required = False

    def __init__(self, document: dict[str, Any]):
        self._document = document

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self._document
