"""The API in-process (falcon.testing) on the test database, with Huey in immediate mode."""

from __future__ import annotations

import pytest
from falcon import testing

from api.app import create_app
from engine.config import Settings
from engine.queue import create_huey
from engine.services import Services
from engine.tasks import register_tasks
from tests.conftest import NOW

API_KEY = "test-key"


def build_client(database, rules, database_url: str, tmp_path, **overrides) -> testing.TestClient:
    settings = Settings(data_dir=tmp_path, database_url=database_url, queue_url="memory://", api_keys=(API_KEY,),
                        **overrides)
    services = Services(settings, database, rules, clock=lambda: NOW)
    tasks = register_tasks(create_huey(settings.queue_url), services)
    return testing.TestClient(create_app(services, tasks), headers={"Authorization": f"Bearer {API_KEY}"})


@pytest.fixture
def client(database, rules, database_url, tmp_path) -> testing.TestClient:
    return build_client(database, rules, database_url, tmp_path)
