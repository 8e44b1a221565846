"""GET /api/tutors, /api/tutors/{id} and /api/tutors/{id}/history, all through engine.queries."""

from __future__ import annotations

import falcon

from engine import queries
from engine.services import Services
from engine.windows import day_of

FLAG_VALUES = {"true": True, "false": False}


def _bad(parameter: str, message: str) -> falcon.HTTPBadRequest:
    return falcon.HTTPBadRequest(title="Invalid query parameter", description=f"{parameter}: {message}")


def _int_param(req: falcon.Request, name: str, default: int) -> int:
    raw = req.get_param(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise _bad(name, "must be a whole number") from None


class TutorListResource:
    def __init__(self, services: Services):
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        flagged_raw = req.get_param("flagged")
        if flagged_raw is not None and flagged_raw.lower() not in FLAG_VALUES:
            raise _bad("flagged", "must be true or false")
        try:
            page = queries.list_tutors(
                self._services.metric_names,
                flagged=None if flagged_raw is None else FLAG_VALUES[flagged_raw.lower()],
                search=req.get_param("q") or None,
                sort=req.get_param("sort") or "-risk_score",
                limit=_int_param(req, "limit", 50),
                offset=_int_param(req, "offset", 0),
            )
        except queries.QueryError as exc:
            raise _bad(exc.parameter, str(exc).split(": ", 1)[1]) from None
        resp.media = {"tutors": page.tutors, "total": page.total}


def _unknown_tutor(tutor_id: str) -> falcon.HTTPNotFound:
    return falcon.HTTPNotFound(title="Unknown tutor", description=f"No tutor with id {tutor_id!r}.")


class TutorResource:
    def __init__(self, services: Services):
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, tutor_id: str) -> None:
        detail = queries.get_tutor_detail(tutor_id, self._services.metric_names)
        if detail is None:
            raise _unknown_tutor(tutor_id)
        resp.media = detail


class TutorHistoryResource:
    def __init__(self, services: Services):
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, tutor_id: str) -> None:
        days = _int_param(req, "days", 90)
        try:
            today = day_of(self._services.clock())
            history = queries.get_tutor_history(tutor_id, days, today, self._services.metric_names)
        except queries.QueryError as exc:
            raise _bad(exc.parameter, str(exc).split(": ", 1)[1]) from None
        if history is None:
            raise _unknown_tutor(tutor_id)
        resp.media = history
