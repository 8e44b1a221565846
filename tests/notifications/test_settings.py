"""TQS_EMAIL_*: transports parsed once at start-up, and a bad value stops it naming the variable."""

from pathlib import Path

import pytest

from engine.config import ConfigError, Settings
from notifications.endpoint import is_loopback, parse_address, parse_addresses, parse_email_url


def test_smtp_url_gives_host_port_credentials_and_tls_options(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    endpoint = parse_email_url(f"smtp://apikey:p%40ss@smtp.sendgrid.net:587?starttls=require&cafile={ca}&timeout=10")
    assert (endpoint.scheme, endpoint.host, endpoint.port) == ("smtp", "smtp.sendgrid.net", 587)
    assert (endpoint.username, endpoint.password, endpoint.starttls) == ("apikey", "p@ss", "require")
    assert endpoint.cafile == str(ca) and endpoint.timeout_seconds == 10
    assert "p@ss" not in endpoint.describe() and "p@ss" not in repr(endpoint)


def test_default_ports_and_the_other_transports():
    assert parse_email_url("smtp://relay.internal").port == 587
    assert parse_email_url("smtps://email-smtp.eu-west-1.amazonaws.com").port == 465
    assert parse_email_url("file:///var/mail/tq").directory == Path("/var/mail/tq")
    assert parse_email_url("console://").scheme == "console"


@pytest.mark.parametrize(("url", "says"), [
    ("http://example.com", "must start with one of"),
    ("smtp://", "names no host"),
    ("smtp://host:99999", "port"),
    ("smtp://host?starttls=maybe", "starttls must be auto or require"),
    ("smtps://host?starttls=require", "smtp:// only"),
    ("smtp://host?verify=no", "unknown option 'verify'"),
    ("smtp://host?cafile=/nonexistent.pem", "cafile"),
    ("smtp://user@host", "both a user name and a password"),
    ("file://relative/dir", "names a directory"),
])
def test_a_bad_email_url_stops_start_up_naming_the_variable(url, says):
    with pytest.raises(ConfigError, match="TQS_EMAIL_URL") as error:
        Settings.from_env({"TQS_EMAIL_URL": url})
    assert says in str(error.value)


@pytest.mark.parametrize(("variable", "value"), [
    ("TQS_EMAIL_TO", "ops@example.com, not an address"),
    ("TQS_EMAIL_TO", "a@b.com\nBcc: victim@example.com"),
    ("TQS_EMAIL_FROM", "nobody"),
    ("TQS_EMAIL_POLICY", "sometimes"),
    ("TQS_DIGEST_HOUR", "24"),
    ("TQS_DASHBOARD_URL", "javascript:alert(1)"),
])
def test_a_bad_address_policy_hour_or_link_names_the_variable(variable, value):
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({variable: value})


def test_sending_mail_needs_real_recipients_and_sender():
    with pytest.raises(ConfigError, match="TQS_EMAIL_TO must be set"):
        Settings.from_env({"TQS_EMAIL_URL": "smtp://relay.example.com", "TQS_EMAIL_FROM": "tq@example.com"})
    with pytest.raises(ConfigError, match="TQS_EMAIL_FROM must be set"):
        Settings.from_env({"TQS_EMAIL_URL": "smtp://relay.example.com", "TQS_EMAIL_TO": "ops@example.com"})
    settings = Settings.from_env({"TQS_EMAIL_URL": "smtp://relay.example.com", "TQS_EMAIL_POLICY": "off"})
    assert settings.email_policy == "off"


def test_the_embedded_default_writes_files_under_the_data_directory(tmp_path):
    settings = Settings(data_dir=tmp_path)
    assert settings.email_endpoint.directory == (tmp_path / "emails").absolute()
    assert settings.email_to == ("admins@localhost",) and settings.email_policy == "every-session"


def test_addresses_are_normalised_and_deduplicated():
    assert parse_addresses(" ops@example.com, Lead <lead@example.com>,ops@example.com ") == (
        "ops@example.com", "Lead <lead@example.com>")
    assert parse_address("Tutor Quality <tq@example.com>") == "Tutor Quality <tq@example.com>"


def test_only_this_machine_counts_as_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("192.0.2.2") and not is_loopback("smtp.example.com")


def test_a_configuration_error_never_shows_a_password_or_secret():
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"TQS_EMAIL_URL": "smtp://apikey:S3cr@t-pass@relay.example.com?starttls=yes"})
    assert "S3cr" not in str(error.value) and "smtp://apikey:***@relay.example.com" in str(error.value)
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"TQS_DASHBOARD_COOKIE_SECRET": "too-short-secret"})
    assert "too-short-secret" not in str(error.value) and "TQS_DASHBOARD_COOKIE_SECRET=(hidden)" in str(error.value)
