"""``create_app`` wires routes to resources; nothing else happens here."""

from __future__ import annotations

import falcon

from api import errors
from api.middleware import CloseDatabase, LimitIngestRate, LogRequests, RequireApiKey
from api.openapi import OpenApiResource, build_document
from api.resources.health import HealthResource
from api.resources.rules import RuleHistoryResource, RuleListResource, RuleResource
from api.resources.sessions import SessionsResource
from api.resources.tutors import TutorHistoryResource, TutorListResource, TutorResource
from engine.apikeys import KeyRing
from engine.config import ConfigError, Settings
from engine.logs import configure_logging
from engine.queue import create_huey
from engine.ratelimit import limiter_for
from engine.services import Services, build_services
from engine.tasks import Tasks, register_tasks


def create_app(services: Services, tasks: Tasks) -> falcon.App:
    settings = services.settings
    if not settings.api_keys:
        raise ConfigError("TQS_API_KEYS must list at least one API key: the API never runs open")
    app = falcon.App(
        middleware=[LogRequests(), RequireApiKey(KeyRing.from_settings(settings, services.database)),
                    LimitIngestRate(limiter_for(settings.ingest_rate_limit, settings.queue_url, services.database)),
                    CloseDatabase(services.database)],
    )
    app.req_options.strip_url_path_trailing_slash = True
    errors.install(app)
    app.add_route("/api/sessions", SessionsResource(services, tasks, settings.max_body_bytes))
    app.add_route("/api/tutors", TutorListResource(services))
    app.add_route("/api/tutors/{tutor_id}", TutorResource(services))
    app.add_route("/api/tutors/{tutor_id}/history", TutorHistoryResource(services))
    app.add_route("/api/rules", RuleListResource(services))
    app.add_route("/api/rules/{name}", RuleResource(services, tasks))
    app.add_route("/api/rules/{name}/history", RuleHistoryResource(services))
    app.add_route("/api/health", HealthResource(services, tasks))
    app.add_route("/api/openapi.json", OpenApiResource(build_document(services.metric_names)))
    return app


def create_app_from_env() -> falcon.App:
    """What gunicorn serves: settings from the environment, the configured database and queue."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    services = build_services(settings)
    return create_app(services, register_tasks(create_huey(settings.queue_url), services))
