from pathlib import Path

import pytest

from engine.config import ConfigError, Settings
from engine.registry import load_rules


def test_defaults_use_sqlite_under_the_data_directory():
    settings = Settings.from_env({})
    assert settings.database_url == f"sqlite:///{Path('data') / 'tutor_quality.db'}"
    threshold = load_rules(settings).rules["reschedule_rate"].settings
    assert (threshold.threshold, threshold.clear_threshold, threshold.window_days, threshold.min_sessions) == (
        15.0, 12.0, 30, 5)


def test_environment_overrides_defaults():
    settings = Settings.from_env({
        "TQS_DATABASE_URL": "postgresql://db/tq", "TQS_RESCHEDULE_THRESHOLD": "20",
        "TQS_CLEAR_THRESHOLD": "10", "TQS_PRIMARY_WINDOW_DAYS": "7", "TQS_MIN_SESSIONS": "3",
        "TQS_RULES": "reschedule_rate, other", "TQS_API_KEYS": "a,b",
    })
    assert settings.database_url == "postgresql://db/tq"
    assert settings.rules == frozenset({"reschedule_rate", "other"})
    assert settings.api_keys == ("a", "b")
    rule = load_rules(Settings.from_env({"TQS_RESCHEDULE_THRESHOLD": "20", "TQS_CLEAR_THRESHOLD": "10",
                                         "TQS_PRIMARY_WINDOW_DAYS": "7", "TQS_MIN_SESSIONS": "3"}))
    settings = rule.rules["reschedule_rate"].settings
    assert (settings.threshold, settings.clear_threshold, settings.window_days, settings.min_sessions) == (
        20.0, 10.0, 7, 3)


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
        load_rules(Settings.from_env({name: value}))


def test_clear_threshold_above_flag_threshold_is_rejected():
    with pytest.raises(ConfigError, match="TQS_CLEAR_THRESHOLD=20.*must not exceed threshold"):
        load_rules(Settings.from_env({"TQS_CLEAR_THRESHOLD": "20"}))
