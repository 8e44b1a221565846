"""The ``tqs`` command as a newcomer runs it, in a subprocess, on the committed sample."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.validation import parse_datetime
from tests.factories import oracle_rate

SAMPLE = Path(__file__).parent / "data" / "sample.json"
SAMPLE_AS_OF = "2026-11-25T00:00:00Z"
# Why each is flagged: Ben 3 of 12 (25%) and Cara 5 of 14 (36%) over 30 days; Hal went above 15% on
# 20 Nov (1 of 5) and now sits at 14.3%, still above the 12% clear threshold. Eli's 2 of 3 is too few
# sessions; Dev recovered; Gus stopped teaching; Ada and Fay are reliable.
EXPECTED_FLAGGED = {"tut-ben", "tut-cara", "tut-hal"}


def tqs(env, *args, check=True):
    result = subprocess.run([sys.executable, "-m", "engine", *args], env=env, capture_output=True, text=True,
                            timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"tqs {' '.join(args)} failed: {result.stderr}")
    return result


@pytest.fixture
def env(database_url, database, tmp_path):
    """The subprocess uses the same (emptied) database as the fixture. These tests read scores; the reports
    `tqs ingest --sync` sends are tested in tests/notifications/test_cli.py, so here the policy is off."""
    return {**os.environ, "TQS_DATABASE_URL": database_url, "TQS_DATA_DIR": str(tmp_path), "TQS_EMAIL_POLICY": "off"}


def test_sample_ingest_prints_correct_rates_and_flags(env):
    tqs(env, "init-db")
    tqs(env, "ingest", str(SAMPLE), "--sync", "--as-of", SAMPLE_AS_OF)
    tutors = json.loads(tqs(env, "tutors", "--json").stdout)
    records = json.loads(SAMPLE.read_text())
    as_of = parse_datetime(SAMPLE_AS_OF)
    assert {t["tutor_id"] for t in tutors} == {r["tutor_id"] for r in records}
    for tutor in tutors:
        for days in (7, 30, 90):
            sessions, moved, rate = oracle_rate(records, tutor["tutor_id"], as_of, days)
            assert tutor[f"sessions_{days}d"] == sessions, tutor["tutor_id"]
            assert tutor[f"tutor_reschedules_{days}d"] == moved, tutor["tutor_id"]
            assert tutor[f"reschedule_rate_{days}d"] == rate, tutor["tutor_id"]
    assert {t["tutor_id"] for t in tutors if t["flagged"]} == EXPECTED_FLAGGED
    flagged_only = json.loads(tqs(env, "tutors", "--flagged", "--json").stdout)
    assert {t["tutor_id"] for t in flagged_only} == EXPECTED_FLAGGED


def test_the_tutor_table_shows_each_rules_rate_in_the_window_it_decides_on(env):
    tqs(env, "init-db")
    tqs(env, "ingest", str(SAMPLE), "--sync", "--as-of", SAMPLE_AS_OF)
    header, *rows = tqs({**env, "COLUMNS": "250"}, "tutors").stdout.splitlines()
    assert [part.strip() for part in header.split("  ") if part.strip()] == [
        "tutor", "name", "sessions 30d", "reschedule rate 30d %", "no-show rate 90d %",
        "poor first-session rate 90d %", "risk", "flag"]
    by_id = {row.split()[0]: row for row in rows if row.startswith("tut-")}
    cara = json.loads(tqs(env, "tutor", "tut-cara", "--json").stdout)
    cells = [f"{cara[name]:.1f}" if cara[name] is not None else "-" for name in (
        "reschedule_rate_30d", "no_show_rate_90d", "poor_first_session_rate_90d", "risk_score")]
    assert by_id["tut-cara"].split()[-5:] == [*cells, "FLAG"]


def test_ingest_reports_bad_records_by_index_and_keeps_the_good(env, tmp_path):
    good = json.loads(SAMPLE.read_text())[:3]
    bad = dict(good[0], session_id="x1", status="cancelled")
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps([good[0], bad, good[1], {"session_id": "x2"}, good[2]]))
    result = tqs(env, "ingest", str(path), "--sync", check=False)
    assert result.returncode == 1
    assert "record 1: status: must be one of completed, rescheduled, no_show" in result.stderr
    assert "record 3:" in result.stderr and "tutor_id: is required" in result.stderr
    assert "ingested 3 sessions" in result.stderr
    assert len(json.loads(tqs(env, "tutors", "--json").stdout)) == len({r["tutor_id"] for r in good})


def test_init_db_is_idempotent(tmp_path):
    env = {**os.environ, "TQS_DATA_DIR": str(tmp_path / "fresh")}
    assert "applied 1, 2" in tqs(env, "init-db").stdout
    assert "nothing to apply" in tqs(env, "init-db").stdout
    assert (tmp_path / "fresh" / "tutor_quality.db").exists()


def test_tutor_detail_and_rules_and_rescore(env):
    tqs(env, "ingest", str(SAMPLE), "--sync", "--as-of", SAMPLE_AS_OF)
    detail = json.loads(tqs(env, "tutor", "tut-ben", "--json").stdout)
    assert detail["flagged"] and detail["insights"]
    assert [flag["rule"] for flag in detail["flags"]] == ["reschedule_rate", "no_show_rate", "first_session"]
    assert "tut-ben" in tqs(env, "tutor", "tut-ben").stdout
    assert tqs(env, "tutor", "nobody", check=False).returncode == 1
    listing = tqs(env, "rules").stdout
    assert "reschedule_rate 2.0.0  [loaded]  from tutor-quality" in listing
    assert "TQS_RULE_NO_SHOW_RATE_THRESHOLD=6.0  flag above this rate, in percent" in listing
    assert "rescored 8 tutors" in tqs(env, "rescore", "--as-of", "2027-03-01T00:00:00Z").stderr
    assert json.loads(tqs(env, "tutors", "--flagged", "--json").stdout) == []


def test_bad_configuration_fails_at_start_naming_the_variable(env):
    result = tqs({**env, "TQS_MIN_SESSIONS": "none"}, "tutors", check=False)
    assert result.returncode == 2 and "TQS_MIN_SESSIONS" in result.stderr


def test_an_as_of_before_the_latest_scoring_is_refused(env):
    tqs(env, "ingest", str(SAMPLE), "--sync", "--as-of", SAMPLE_AS_OF)
    result = tqs(env, "rescore", "--as-of", "2026-10-01T00:00:00Z", check=False)
    assert result.returncode == 2 and "before the latest scoring" in result.stderr
    assert {t["tutor_id"] for t in json.loads(tqs(env, "tutors", "--flagged", "--json").stdout)} == EXPECTED_FLAGGED


def test_tutors_pages_through_everyone_and_honours_limit(env, tmp_path):
    records = [dict(json.loads(SAMPLE.read_text())[0], session_id=f"p{i}", tutor_id=f"tutor-{i:04d}")
               for i in range(620)]
    path = tmp_path / "many.json"
    path.write_text(json.dumps(records))
    tqs(env, "ingest", str(path), "--sync")
    assert len(json.loads(tqs(env, "tutors", "--json").stdout)) == 620
    assert len(json.loads(tqs(env, "tutors", "--json", "--limit", "7").stdout)) == 7


def test_a_rule_that_fails_to_import_is_reported_and_the_others_still_score(env, tmp_path):
    from tests.support.outside_rule import install_broken
    site = install_broken(tmp_path / "site")
    broken = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))}
    tqs(broken, "ingest", str(SAMPLE), "--sync", "--as-of", SAMPLE_AS_OF)
    assert {t["tutor_id"] for t in json.loads(tqs(broken, "tutors", "--flagged", "--json").stdout)} == EXPECTED_FLAGGED
    listing = tqs(broken, "rules", check=False)
    assert listing.returncode == 1  # a failed rule is something to act on
    assert "broken_rule   [failed]  from tq-broken-rule 0.1.0 (entry point)" in listing.stdout
    assert "error: ModuleNotFoundError: No module named 'a_module_nobody_installed'" in listing.stdout
    assert "reschedule_rate 2.0.0  [loaded]" in listing.stdout
    report = {rule["name"]: rule for rule in json.loads(tqs(broken, "rules", "--json", check=False).stdout)}
    assert report["broken_rule"]["status"] == "failed" and report["no_show_rate"]["status"] == "loaded"
    assert "event=rule_failed_to_load rule=broken_rule" in listing.stderr
    chosen = tqs({**broken, "TQS_DISABLED_RULES": "broken_rule"}, "rules")  # turned off: nothing to act on
    assert "broken_rule   [disabled]" in chosen.stdout
    rebuild = tqs(broken, "rescore", "--rebuild", check=False)  # it would throw the broken rule's results away
    assert rebuild.returncode == 2 and "throw away the results of broken_rule" in rebuild.stderr
    health_like = json.loads(tqs(broken, "rules", "--json", check=False).stdout)
    assert {r["name"]: r for r in health_like}["broken_rule"]["failing"]["tutors"] == 8  # each tutor it missed


def test_a_bad_rule_setting_stops_the_command_naming_the_variable(env):
    result = tqs({**env, "TQS_RULE_NO_SHOW_RATE_THRESHOLD": "half"}, "tutors", check=False)
    assert result.returncode == 2
    assert "TQS_RULE_NO_SHOW_RATE_THRESHOLD='half': must be a number" in result.stderr


def test_backtest_replays_what_scoring_stored_and_changes_nothing(env):
    tqs(env, "ingest", str(SAMPLE), "--sync", "--as-of", SAMPLE_AS_OF)
    tqs(env, "rescore")  # every tutor scored through today, as the replay is
    flagged_by = {t["tutor_id"] for t in json.loads(tqs(env, "tutors", "--json").stdout)
                  if "reschedule_rate" in t["flagged_by"]}
    result = json.loads(tqs(env, "backtest", "--rule", "reschedule_rate", "--threshold", "12", "--json").stdout)
    assert result["tutors"] == 8 and result["current"]["settings"]["threshold"] == 15.0
    assert result["proposed"]["settings"]["threshold"] == 12.0
    current_ids = flagged_by  # the replay of the current settings agrees with the stored scores
    assert result["current"]["flagged_now"] == len(current_ids)
    proposed = current_ids | {t["tutor_id"] for t in result["newly_flagged"]}
    proposed -= {t["tutor_id"] for t in result["no_longer_flagged"]}
    assert result["proposed"]["flagged_now"] == len(proposed) >= len(current_ids)
    text = tqs(env, "backtest", "--rule", "reschedule_rate", "--policy", "evidence").stdout
    assert "flag_policy" in text and "nothing was changed" in text and "flagged today" in text
    refused = tqs(env, "backtest", "--rule", "reschedule_rate", "--set", "clear_threshold=20", check=False)
    assert refused.returncode == 2 and "clear_threshold (20) must not exceed threshold (15)" in refused.stderr
    assert json.loads(tqs(env, "rules", "history", "--json").stdout) == []
    assert {t["tutor_id"] for t in json.loads(tqs(env, "tutors", "--json").stdout)
            if "reschedule_rate" in t["flagged_by"]} == flagged_by


def test_rules_set_checks_stores_audits_and_rescores(env):
    tqs(env, "ingest", str(SAMPLE), "--sync", "--as-of", SAMPLE_AS_OF)
    bad = tqs(env, "rules", "set", "reschedule_rate", "threshold=abc", "--reason", "try", check=False)
    assert bad.returncode == 2 and "threshold='abc': must be a number" in bad.stderr
    missing = tqs(env, "rules", "set", "reschedule_rate", "threshold=12", check=False)
    assert missing.returncode == 2 and "--reason" in missing.stderr
    assert json.loads(tqs(env, "rules", "history", "--json").stdout) == []
    changed = tqs(env, "rules", "set", "reschedule_rate", "threshold=12", "--reason", "more coaches", "--by", "amy")
    assert "reschedule_rate.threshold: 15 -> 12" in changed.stdout and "rescored 8 tutors" in changed.stderr
    trail = json.loads(tqs(env, "rules", "history", "reschedule_rate", "--json").stdout)
    assert [(c["setting"], c["old_value"], c["new_value"], c["changed_by"], c["reason"]) for c in trail] == [
        ("threshold", "15", "12", "amy", "more coaches")]
    assert trail[0]["rescore"]["done"] == 8 and trail[0]["rescore"]["finished_at"]
    assert "TQS_RULE_RESCHEDULE_RATE_THRESHOLD=12.0 (default 15.0) [set at runtime]" in tqs(env, "rules").stdout
    again = tqs(env, "rules", "set", "reschedule_rate", "threshold=12", "--reason", "again")
    assert "nothing to change" in again.stdout
    assert "more coaches" in tqs(env, "rules", "history").stdout
    few = tqs(env, "rules", "fit-prior", "reschedule_rate", check=False)
    assert few.returncode == 1 and "too few tutors" in few.stderr


def test_keys_are_shown_once_listed_by_name_and_revoked(env):
    tqs(env, "init-db")
    made = tqs(env, "keys", "create", "rails-prod", "--scope", "ingest")
    key = made.stdout.strip()
    assert key.startswith("tqs_") and len(key) > 40 and "shown only now" in made.stderr
    assert tqs(env, "keys", "create", "rails-prod", check=False).returncode == 1
    listed = tqs(env, "keys", "list").stdout
    assert "rails-prod" in listed and "ingest" in listed and key not in listed
    tqs(env, "keys", "revoke", "rails-prod")
    row = next(line for line in tqs(env, "keys", "list").stdout.splitlines() if "rails-prod" in line)
    assert len(row.split()) == 6  # name, scope, created date and time, revoked date and time
    assert "no key named" in tqs(env, "keys", "revoke", "nobody", check=False).stderr
