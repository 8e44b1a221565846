"""GET /api/rules, GET and PUT /api/rules/{name}, GET /api/rules/{name}/history: rule settings changed at
runtime (an admin key only), each change audited and followed by a queued rescore."""

from __future__ import annotations

from typing import Any

import falcon

from api.body import read_json
from engine.audit import history, stored_settings
from engine.rulereport import describe_rules
from engine.rulestore import MAX_REASON, change_settings
from engine.services import Services
from engine.tasks import Tasks
from engine.validation import CONTROL, storable

MAX_BODY = 16 * 1024
MAX_ACTOR = 100


def _report(services: Services) -> list[dict]:
    with services.database.connection_context():
        return describe_rules(services.refresh_rules(), stored_settings(services.database),
                              services.settings.rule_env)


def _known(services: Services, name: str) -> None:
    """404 unless a rule of that name is installed (loaded, disabled or failed)."""
    if name not in {status.name for status in services.refresh_rules().statuses}:
        raise falcon.HTTPNotFound(title="Unknown rule",
                                  description=f"No installed rule is called {name!r}; see GET /api/rules.")


def _one(services: Services, name: str) -> dict:
    _known(services, name)
    return next(entry for entry in _report(services) if entry["name"] == name)


class RuleListResource:
    def __init__(self, services: Services):
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"rules": _report(self._services)}


class RuleResource:
    scopes = {"PUT": "admin"}

    def __init__(self, services: Services, tasks: Tasks):
        self._services, self._tasks = services, tasks

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.media = _one(self._services, name)

    def on_put(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        """Change some settings: ``{"settings": {"threshold": 12}, "reason": "...", "changed_by": "alice"}``;
        a setting given as ``null`` goes back to the environment's value."""
        body = read_json(req, MAX_BODY)
        changes, reason, actor = _change_request(body)
        _known(self._services, name)
        changed_by = f"{actor} ({req.context.api_key})" if actor else f"api {req.context.api_key}"
        try:
            made = change_settings(self._services, name, changes, changed_by, reason)
        except ValueError as exc:
            raise falcon.HTTPBadRequest(title="Invalid settings", description=str(exc)) from None
        queued = self._tasks.queue_settings_rescore(made[0].batch) if made else False
        resp.media = {
            "rule": _one(self._services, name),
            "changes": [change.as_dict() for change in reversed(made)],
            "rescore": ({"status": "queued" if queued else "pending (the worker's sweeper will queue it)",
                         "batch": made[0].batch, "progress": f"/api/rules/{name}/history"} if made else None),
        }


class RuleHistoryResource:
    def __init__(self, services: Services):
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        _known(self._services, name)
        limit = req.get_param_as_int("limit", min_value=1, max_value=1000, default=200)
        resp.media = {"rule": name,
                      "changes": [c.as_dict() for c in history(self._services.database, name, limit=limit)]}


def _change_request(body: Any) -> tuple[dict[str, str | None], str, str]:
    if not isinstance(body, dict):
        raise falcon.HTTPBadRequest(title="Invalid request", description="Send a JSON object with settings and reason.")
    unknown = sorted(set(body) - {"settings", "reason", "changed_by"})
    if unknown:
        raise falcon.HTTPBadRequest(title="Invalid request",
                                    description=f"Unknown fields {', '.join(unknown)}: send settings, reason and "
                                                "optionally changed_by.")
    settings, reason, actor = body.get("settings"), body.get("reason"), body.get("changed_by", "")
    if not isinstance(settings, dict) or not settings:
        raise falcon.HTTPBadRequest(title="Invalid settings",
                                    description='settings must be an object naming what to change, e.g. '
                                                '{"threshold": 12}')
    values: dict[str, str | None] = {}
    for key, value in settings.items():
        if not storable(key) or (isinstance(value, str) and not storable(value)):
            raise falcon.HTTPBadRequest(title="Invalid settings",
                                        description=f"settings {key!r}: names and values may not hold NUL characters "
                                                    "or lone surrogates")
        if value is None:  # back to the environment's value
            values[key] = None
        elif isinstance(value, bool):
            values[key] = "true" if value else "false"
        elif isinstance(value, int | float | str):
            values[key] = str(value)
        else:
            raise falcon.HTTPBadRequest(title="Invalid settings",
                                        description=f"settings.{key} must be a number, a string or true/false")
    if not isinstance(reason, str) or not reason.strip():
        raise falcon.HTTPBadRequest(title="Invalid request", description="reason is required: say why, for the "
                                                                         "audit trail")
    if len(reason) > MAX_REASON or not storable(reason):
        raise falcon.HTTPBadRequest(title="Invalid request", description=f"reason must be under {MAX_REASON} "
                                                                         "characters, without NUL characters or lone "
                                                                         "surrogates")
    if not isinstance(actor, str) or len(actor) > MAX_ACTOR or CONTROL.search(actor) or not storable(actor):
        raise falcon.HTTPBadRequest(title="Invalid request",
                                    description=f"changed_by must be a name of at most {MAX_ACTOR} printable "
                                                "characters")
    return values, reason, actor.strip()
