"""GET /api/tutors, /api/tutors/{id} and /api/tutors/{id}/history, all through engine.queries."""

from __future__ import annotations

import falcon

from engine import queries
from engine.services import Services
from engine.windows import day_of


def _invalid(exc: queries.QueryError) -> falcon.HTTPInvalidParam:
    """A read-layer refusal as Falcon's own invalid-parameter error, so every 400 for a query reads alike."""
    return falcon.HTTPInvalidParam(exc.message, exc.parameter)


def _boolean(req: falcon.Request, name: str) -> bool | None:
    """Falcon reads a bare ``?flagged=`` as true (a flag); the document says a boolean, so it is refused."""
    if req.get_param(name) == "":
        raise falcon.HTTPInvalidParam("The value of the parameter must be \"true\" or \"false\".", name)
    return req.get_param_as_bool(name)


class TutorListResource:
    def __init__(self, services: Services):
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            page = queries.list_tutors(
                self._services.metric_names,
                flagged=_boolean(req, "flagged"),
                search=req.get_param("q") or None,
                sort=req.get_param("sort", default="-risk_score"),  # present but empty is refused, as documented
                limit=req.get_param_as_int("limit", min_value=1, max_value=queries.MAX_PAGE,
                                           default=queries.DEFAULT_PAGE),
                offset=req.get_param_as_int("offset", min_value=0, max_value=queries.MAX_OFFSET, default=0),
            )
        except queries.QueryError as exc:
            raise _invalid(exc) from None
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
        days = req.get_param_as_int("days", min_value=1, max_value=queries.MAX_HISTORY_DAYS,
                                    default=queries.DEFAULT_HISTORY_DAYS)
        try:
            today = day_of(self._services.clock())
            history = queries.get_tutor_history(tutor_id, days, today, self._services.metric_names)
        except queries.QueryError as exc:
            raise _invalid(exc) from None
        if history is None:
            raise _unknown_tutor(tutor_id)
        resp.media = history
