"""Student names and reasons are sealed at rest: the raw rows of every table hold no plaintext, they open
where shown, a new key rotates in without losing the old data, and tutor-name search keeps working."""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import sys

import psycopg2
import pytest
from cryptography.fernet import Fernet

from engine import queries
from engine.config import Settings
from engine.ingest import ingest
from engine.models import MODELS
from engine.personal import PREFIX, PersonalDataCipher, UnreadableSecret, cipher_for
from engine.rekey import values_not_under
from engine.services import Services
from tests.conftest import NOW
from tests.factories import raw_session

OLD_KEY, NEW_KEY = Fernet.generate_key().decode(), Fernet.generate_key().decode()
NAMES = ["Zelda Quixotefern", "Ygritte Marblewood"]
REASONS = ["hospital appointment for my daughter", "moving house to Thornbury Lane"]


def personal_sessions() -> list[dict]:
    when = NOW - dt.timedelta(days=2)
    return [
        raw_session("p1", "tut-ada", when, "completed", student_name=NAMES[0], tutor_name="Ada Lovelace"),
        raw_session("p2", "tut-ada", when, "rescheduled", "tutor", reason=REASONS[0], student_name=NAMES[1],
                    tutor_name="Ada Lovelace"),
        # twice the same reason: the rule's insight quotes it ("Most common reason: ...")
        raw_session("p3", "tut-bob", when, "rescheduled", "tutor", reason=REASONS[1], tutor_name="Bob Builder"),
        raw_session("p4", "tut-bob", when, "rescheduled", "tutor", reason=REASONS[1], tutor_name="Bob Builder"),
    ]


def services_with(database, rules, tmp_path, *keys: str) -> Services:
    settings = Settings(data_dir=tmp_path, secret_keys=keys)  # reports too: their rows must not leak either
    return Services(settings, database, rules, clock=lambda: NOW)


def raw_rows(url: str) -> str:
    """Every row of every table as Postgres holds it, read without the application."""
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        text = []
        for model in MODELS:
            cursor.execute(f'SELECT row_to_json(t)::text FROM "{model._meta.table_name}" t')
            text += [row[0] for row in cursor.fetchall()]
    return "\n".join(text)


@pytest.mark.postgres
def test_raw_postgres_rows_hold_no_student_name_or_reason_and_rotation_keeps_them_readable(
        postgres_database, postgres_url, rules, tmp_path):
    services = services_with(postgres_database, rules, tmp_path, OLD_KEY)
    ingest(services, personal_sessions())
    stored = raw_rows(postgres_url).lower()
    assert "p2" in stored and "ada lovelace" in stored  # ids and tutor names are there...
    for secret in NAMES + REASONS + [word for text in NAMES + REASONS for word in text.split() if len(word) > 6]:
        assert secret.lower() not in stored, secret  # ...student names and reasons are not, not even a word
    with postgres_database.connection_context():
        assert queries.get_session("p2")["student_name"] == NAMES[1]
        assert queries.get_session("p2")["reschedule"]["reason"] == REASONS[0]
        insights = queries.get_tutor_detail("tut-bob", services.metric_names)["insights"]
        assert any(REASONS[1].lower() in line for line in insights)  # the rule quotes it, lower-cased
        found = queries.list_tutors(services.metric_names, search="lovelace")
        assert [t["tutor_id"] for t in found.tutors] == ["tut-ada"]

    env = {**os.environ, "TQS_DATABASE_URL": postgres_url, "TQS_DATA_DIR": str(tmp_path),
           "TQS_SECRET_KEY": f"{NEW_KEY},{OLD_KEY}"}
    rotated = subprocess.run([sys.executable, "-m", "engine", "rotate-key"], env=env, capture_output=True,
                             text=True, timeout=60)
    assert rotated.returncode == 0, rotated.stderr
    assert "4 sessions rows, 3 reschedules rows" in rotated.stdout
    assert OLD_KEY not in rotated.stdout + rotated.stderr and NEW_KEY not in rotated.stdout + rotated.stderr
    assert "the old keys may now be dropped" in rotated.stdout
    with postgres_database.connection_context():
        assert values_not_under(postgres_database, PersonalDataCipher([NEW_KEY])) == 0

    after = services_with(postgres_database, rules, tmp_path, NEW_KEY)  # the old key dropped
    with postgres_database.connection_context():
        assert after.settings.secret_keys == (NEW_KEY,)
        assert queries.get_session("p1")["student_name"] == NAMES[0]
        bob = queries.get_tutor_detail("tut-bob", after.metric_names)
        assert bob["recent_reschedules"][0]["reason"] == REASONS[1]
        assert any(REASONS[1].lower() in line for line in bob["insights"])
    assert all(secret.lower() not in raw_rows(postgres_url).lower() for secret in NAMES + REASONS)

    late = services_with(postgres_database, rules, tmp_path, OLD_KEY)  # a process not yet given the new key
    ingest(late, [raw_session("p5", "tut-bob", NOW - dt.timedelta(days=1), student_name="Late Writer")])
    with postgres_database.connection_context():
        assert values_not_under(postgres_database, PersonalDataCipher([NEW_KEY])) >= 2  # the name, its inbox copy, and
        # the rescore it caused (its insights and recommendations)
    again = subprocess.run([sys.executable, "-m", "engine", "rotate-key"], env=env, capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0 and "the old keys may now be dropped" in again.stdout, again.stderr


def test_a_new_key_in_front_opens_the_old_data_and_seals_new_data_under_itself():
    old, both, new = (PersonalDataCipher([OLD_KEY]), PersonalDataCipher([NEW_KEY, OLD_KEY]),
                      PersonalDataCipher([NEW_KEY]))
    sealed = old.seal(NAMES[0])
    assert sealed.startswith(PREFIX) and NAMES[0] not in sealed and sealed != old.seal(NAMES[0])
    assert both.open(sealed) == NAMES[0]
    with pytest.raises(UnreadableSecret):
        new.open(sealed)
    assert new.open(both.reseal(sealed)) == NAMES[0]
    assert new.open(both.reseal("stored before encryption")) == "stored before encryption"
    assert new.open("stored before encryption") == "stored before encryption" and new.open(None) is None


def test_any_long_secret_is_derived_into_a_key_and_without_one_a_private_key_file_is_made_once(tmp_path):
    derived = PersonalDataCipher(["a passphrase of at least thirty-two characters"])
    assert derived.open(derived.seal("x")) == "x"
    first = cipher_for((), tmp_path)
    key_file = tmp_path / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    cipher_for.cache_clear()
    assert cipher_for((), tmp_path).open(first.seal("same key")) == "same key"
    with pytest.raises(Exception, match="TQS_SECRET_KEY"):
        Settings.from_env({"TQS_SECRET_KEY": "short"})
    key_file.write_text("")  # damaged: refused, never turned into a key anyone could compute
    cipher_for.cache_clear()
    with pytest.raises(ValueError, match="does not hold a Fernet key"):
        cipher_for((), tmp_path)
