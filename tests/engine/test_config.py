from pathlib import Path

import pytest

from engine.config import ConfigError, Settings


def test_defaults_use_sqlite_under_the_data_directory():
    settings = Settings.from_env({})
    assert settings.database_url == f"sqlite:///{Path('data') / 'tutor_quality.db'}"
    assert (settings.reschedule_threshold, settings.clear_threshold) == (15.0, 12.0)
    assert (settings.primary_window_days, settings.min_sessions) == (30, 5)


def test_environment_overrides_defaults():
    settings = Settings.from_env({
        "TQS_DATABASE_URL": "postgresql://db/tq", "TQS_RESCHEDULE_THRESHOLD": "20",
        "TQS_CLEAR_THRESHOLD": "10", "TQS_PRIMARY_WINDOW_DAYS": "7", "TQS_MIN_SESSIONS": "3",
        "TQS_RULES": "reschedule_rate, other", "TQS_API_KEYS": "a,b",
    })
    assert settings.database_url == "postgresql://db/tq"
    assert settings.reschedule_threshold == 20 and settings.clear_threshold == 10
    assert settings.primary_window_days == 7 and settings.min_sessions == 3
    assert settings.rules == frozenset({"reschedule_rate", "other"})
    assert settings.api_keys == ("a", "b")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TQS_RESCHEDULE_THRESHOLD", "lots"),
        ("TQS_RESCHEDULE_THRESHOLD", "150"),
        ("TQS_PRIMARY_WINDOW_DAYS", "14"),
        ("TQS_MIN_SESSIONS", "0"),
        ("TQS_DATABASE_URL", "just-a-path"),
    ],
)
def test_bad_value_names_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_clear_threshold_above_flag_threshold_is_rejected():
    with pytest.raises(ConfigError, match="TQS_CLEAR_THRESHOLD"):
        Settings.from_env({"TQS_CLEAR_THRESHOLD": "20"})
