"""Named API keys: each scope may do what it says and no more, a revoked key is refused, logs name the key
and never show it; and the ingest endpoint's per-key rate limit answers 429 with Retry-After."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from engine import apikeys
from engine.config import RateLimit
from engine.models import ApiKey, InboxItem, Session
from engine.ratelimit import DatabaseCounter, RateLimiter
from tests.api.conftest import build_client
from tests.conftest import NOW
from tests.factories import raw_session


@pytest.fixture
def keys(database):
    return {scope: apikeys.create_key(database, f"{scope}-app", scope, NOW) for scope in apikeys.SCOPES}


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def post_one(client, key, session_id="s1"):
    return client.simulate_post("/api/sessions", json=raw_session(session_id, "t1", NOW - dt.timedelta(hours=1)),
                                headers=bearer(key))


def test_each_scope_may_do_what_it_names_and_no_more(client, keys, database):
    assert post_one(client, keys["ingest"]).status_code == 202
    refused = client.simulate_get("/api/tutors", headers=bearer(keys["ingest"]))
    assert refused.status_code == 403 and "read scope" in refused.json["error"]["message"]
    assert "ingest-app" in refused.json["error"]["message"]

    assert client.simulate_get("/api/tutors/t1", headers=bearer(keys["read"])).status_code == 200
    refused = post_one(client, keys["read"], "s2")
    assert refused.status_code == 403 and "ingest scope" in refused.json["error"]["message"]
    change = {"settings": {"threshold": 14}, "reason": "scope test"}
    assert client.simulate_put("/api/rules/reschedule_rate", json=change,
                               headers=bearer(keys["read"])).status_code == 403

    assert post_one(client, keys["admin"], "s3").status_code == 202
    assert client.simulate_get("/api/tutors", headers=bearer(keys["admin"])).status_code == 200
    with database.connection_context():
        assert {row.session_id for row in InboxItem.select()} == {"s1", "s3"}  # the refused one stored nothing


def test_only_a_digest_is_stored_and_a_revoked_or_unknown_key_is_refused(client, keys, database):
    with database.connection_context():
        stored = [(row.name, row.key_hash) for row in ApiKey.select()]
    assert all(key not in str(stored) for key in keys.values())
    assert dict(stored)["ingest-app"] == apikeys.digest(keys["ingest"])

    apikeys.revoke_key(database, "ingest-app", NOW)  # never used by this app: no remembered holder
    assert post_one(client, keys["ingest"]).status_code == 401
    assert post_one(client, keys["ingest"] + "x").status_code == 401
    assert client.simulate_get("/api/tutors", headers={"X-API-Key": keys["read"]}).status_code == 200


def test_a_revoked_key_is_refused_once_its_holder_is_no_longer_remembered(database, keys):
    clock = [0.0]
    ring = apikeys.KeyRing({}, database, clock=lambda: clock[0])
    assert ring.holder(keys["read"].encode()).name == "read-app"
    apikeys.revoke_key(database, "read-app", NOW)
    clock[0] += apikeys.CACHE_SECONDS + 0.1
    assert ring.holder(keys["read"].encode()) is None


def test_names_are_checked_and_never_reused(database):
    apikeys.create_key(database, "rails", "ingest", NOW)
    apikeys.revoke_key(database, "rails", NOW)
    for name, scope, message in (("rails", "ingest", "exists already"), ("Rails!", "ingest", "must be"),
                                 ("env-1", "read", "bootstrap"), ("ok", "superuser", "scope")):
        with pytest.raises(apikeys.ApiKeyError, match=message):
            apikeys.create_key(database, name, scope, NOW)
    with pytest.raises(apikeys.ApiKeyError, match="no key named"):
        apikeys.revoke_key(database, "nobody", NOW)


def test_request_logs_name_the_key_and_never_show_it(client, keys, caplog):
    with caplog.at_level(logging.INFO, logger="tutor_quality.api"):
        post_one(client, keys["ingest"])
        client.simulate_get("/api/tutors")  # the bootstrap key
    lines = [record.getMessage() for record in caplog.records if "event=http_request" in record.getMessage()]
    assert any("key=ingest-app" in line for line in lines) and any("key=env-1" in line for line in lines)
    assert not any(key in line for key in (*keys.values(), "test-key") for line in caplog.messages)


def test_over_the_limit_a_key_gets_429_with_retry_after_and_nothing_is_stored(database, rules, database_url,
                                                                               tmp_path, keys):
    client = build_client(database, rules, database_url, tmp_path, ingest_rate_limit=RateLimit(3, 60))
    statuses = [post_one(client, keys["ingest"], f"r{i}").status_code for i in range(3)]
    refused = post_one(client, keys["ingest"], "r3")
    assert statuses == [202, 202, 202] and refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60 and "Nothing was stored" in refused.json["error"]["message"]
    assert post_one(client, keys["admin"], "r4").status_code == 202  # each key has its own count
    assert client.simulate_get("/api/tutors").status_code == 200  # reads are not limited
    with database.connection_context():
        assert not Session.select().where(Session.session_id == "r3").exists()
        assert not InboxItem.select().where(InboxItem.session_id == "r3").exists()


def test_the_database_counter_starts_again_each_window_and_forgets_old_ones(database):
    now = [1000.0]
    limiter = RateLimiter(RateLimit(2, 10), DatabaseCounter(database), clock=lambda: now[0])
    with database.connection_context():
        assert [limiter.check("k").allowed for _ in range(3)] == [True, True, False]
        assert limiter.check("k").retry_after == 10
        now[0] += 10
        assert limiter.check("k").allowed
        assert database.execute_sql("SELECT COUNT(*) FROM rate_limit_windows").fetchone()[0] == 1
