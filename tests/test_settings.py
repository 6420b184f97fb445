"""Settings: the environment of SPEC §9, and production refusing unsafe defaults."""

from __future__ import annotations

import pytest

from api.settings import Settings

SAFE = {
    "RABTA_ENV": "production",
    "RABTA_SECRET_KEY": "x" * 40,
    "TWILIO_ACCOUNT_SID": "AC1",
    "TWILIO_AUTH_TOKEN": "token",
    "TWILIO_FROM": "+15005550006",
    "REDIS_URL": "redis://redis:6379/0",
    "DATABASE_URL": "postgresql+asyncpg://rabta@db/rabta",
}


def make(monkeypatch, **env):
    for key in (
        "RABTA_ENV",
        "RABTA_SECRET_KEY",
        "TWILIO_AUTH_TOKEN",
        "REDIS_URL",
        "DATABASE_URL",
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_WEBHOOK_SECRET",
        "RABTA_DEFAULT_LANGUAGE",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_FROM",
        "RABTA_OUTBOUND",
    ):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings(_env_file=None)


def test_defaults_are_the_documented_ones(monkeypatch):
    s = make(monkeypatch)
    assert s.rabta_env == "development"
    assert s.database_url == "sqlite+aiosqlite:///var/rabta.db"
    assert s.redis_url is None
    assert s.public_base_url == "http://127.0.0.1:8000"
    assert s.default_language == "ur"
    assert (s.limit_sender, s.limit_cnic, s.limit_otp) == ("10/hour", "20/day", "5/hour")
    assert s.outbound_mode == "console"
    assert s.registry_url == s.database_url


def test_production_accepts_safe_settings(monkeypatch):
    assert make(monkeypatch, **SAFE).is_production


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"RABTA_SECRET_KEY": None}, "RABTA_SECRET_KEY"),
        ({"RABTA_SECRET_KEY": "short"}, "RABTA_SECRET_KEY"),
        ({"TWILIO_AUTH_TOKEN": None}, "TWILIO_AUTH_TOKEN"),
        ({"REDIS_URL": None}, "REDIS_URL"),
        ({"DATABASE_URL": None}, "DATABASE_URL"),
        ({"TELEGRAM_BOT_TOKEN": "123:abc"}, "TELEGRAM_WEBHOOK_SECRET"),
        ({"TWILIO_ACCOUNT_SID": None}, "TWILIO_ACCOUNT_SID must be set to send messages"),
        ({"TWILIO_FROM": None}, "TWILIO_FROM must be set to send messages"),
        ({"TWILIO_FROM": ""}, "TWILIO_FROM must be set to send messages"),
        ({"RABTA_OUTBOUND": "twilio", "TWILIO_FROM": None}, "TWILIO_FROM must be set"),
    ],
)
def test_production_refuses_unsafe_defaults(monkeypatch, change, complaint):
    env = {**SAFE, **change}
    env = {k: v for k, v in env.items() if v is not None}
    with pytest.raises(ValueError, match=complaint):
        make(monkeypatch, **env)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("ur-Latn", "ur_Latn"),
        ("pa-Arab", "pa_Arab"),
        ("en", "en"),
        # Language tags are case-insensitive (BCP 47): `UR`, as `LANG UR` writes it, is Urdu.
        ("UR", "ur"),
        ("ur-latn", "ur_Latn"),
        (" PA-ARAB ", "pa_Arab"),
    ],
)
def test_default_language_accepts_both_spellings(monkeypatch, given, expected):
    assert make(monkeypatch, RABTA_DEFAULT_LANGUAGE=given).default_language == expected


def test_unknown_default_language_is_refused(monkeypatch):
    with pytest.raises(ValueError, match="RABTA_DEFAULT_LANGUAGE"):
        make(monkeypatch, RABTA_DEFAULT_LANGUAGE="fr")


def test_production_sends_through_twilio_unless_console_is_asked_for(monkeypatch):
    """A production deployment writes messages to a file only when told to: a credential left
    out is refused above, never a silent fall-back to console outbound."""
    assert make(monkeypatch, **SAFE).outbound_mode == "twilio"
    env = {k: v for k, v in SAFE.items() if k not in ("TWILIO_ACCOUNT_SID", "TWILIO_FROM")}
    assert make(monkeypatch, **env, RABTA_OUTBOUND="console").outbound_mode == "console"


def test_outbound_is_twilio_when_credentials_are_set(monkeypatch):
    s = make(monkeypatch, TWILIO_ACCOUNT_SID="AC1", TWILIO_AUTH_TOKEN="t", TWILIO_FROM="+1500")
    assert s.outbound_mode == "twilio"


@pytest.mark.parametrize(
    "command",
    [
        ["db", "upgrade"],
        ["registry", "seed", "--households", "1"],
        ["outbox", "stats"],
        ["partner", "create", "x"],
    ],
    ids=" ".join,
)
def test_a_refused_configuration_exits_2_without_echoing_its_values(monkeypatch, command):
    """Every `rabta` command says what was refused, never the values it was given: pydantic's
    own message repeats the whole input, a database password included."""
    from typer.testing import CliRunner

    from api.cli import app
    from api.settings import get_settings

    password = "s3cret-db-password"
    for key in ("RABTA_SECRET_KEY", "TWILIO_AUTH_TOKEN", "REDIS_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("RABTA_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", f"postgresql+asyncpg://rabta:{password}@db.internal/rabta")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, command)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "Configuration refused" in result.output
    assert "RABTA_SECRET_KEY must be set" in result.output
    assert password not in result.output
    assert "input_value" not in result.output  # pydantic's echo of the input, cut at random


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://rabta:pw@db:5432/rabta", "postgresql+asyncpg://rabta:pw@db:5432/rabta"),
        ("postgres://rabta@db/rabta", "postgresql+asyncpg://rabta@db/rabta"),
        ("sqlite:///var/rabta.db", "sqlite+aiosqlite:///var/rabta.db"),
        ("postgresql+asyncpg://rabta@db/rabta", "postgresql+asyncpg://rabta@db/rabta"),
        ("sqlite+aiosqlite:///var/rabta.db", "sqlite+aiosqlite:///var/rabta.db"),
    ],
)
def test_database_urls_without_a_driver_get_the_async_one(monkeypatch, given, expected):
    """`postgresql://…`, the form most tools write, means PostgreSQL through asyncpg, the driver
    Rabta ships; without this it fails on the first connection with a missing `psycopg`."""
    monkeypatch.setenv("REGISTRY_DATABASE_URL", given)
    settings = make(monkeypatch, DATABASE_URL=given)
    assert (settings.database_url, settings.registry_url) == (expected, expected)


def test_rabta_db_upgrade_takes_a_plain_database_url(monkeypatch, database_url):
    """The test database, written without its driver, is migrated by `rabta db upgrade`."""
    from typer.testing import CliRunner

    from api.cli import app
    from api.settings import get_settings

    plain = database_url.replace("+asyncpg", "").replace("+aiosqlite", "")
    monkeypatch.setenv("DATABASE_URL", plain)
    monkeypatch.delenv("RABTA_ENV", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["db", "upgrade"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output


LIMIT_VARIABLES = [
    "RABTA_LIMIT_SENDER",
    "RABTA_LIMIT_CNIC",
    "RABTA_LIMIT_OTP",
    "RABTA_LIMIT_IP",
    "RABTA_LIMIT_PARTNER",
]


@pytest.mark.parametrize("variable", LIMIT_VARIABLES)
@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("10/fortnight", "'10/fortnight' is not a rate limit; write it like 60/minute or 10/hour"),
        ("a;b", "'a;b' is not a rate limit; write it like 60/minute or 10/hour"),
        ("", "'' is not a rate limit; write it like 60/minute or 10/hour"),
        # Every request refused: the limiter applied it, and nothing was ever answered.
        ("0/minute", "'0/minute' lets nothing through; write one of at least 1, like 60/minute"),
        # `limits` reads the first of several and drops the rest without a word.
        (
            "10/hour;100/day",
            "'10/hour;100/day' is several limits, and only the first would be applied; "
            "write one, like 60/minute",
        ),
    ],
    ids=["unknown-period", "not-a-limit", "empty", "zero", "several"],
)
def test_a_rate_limit_that_would_not_apply_as_written_is_refused(monkeypatch, variable, value, why):
    """Refused where the settings are read, by every way the service starts (`rabta`, or
    `uvicorn api.main:app`), not when the first worker's lifespan builds the limiter."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as refused:
        make(monkeypatch, **{variable: value})
    (error,) = refused.value.errors(include_url=False, include_input=False)
    assert (error["loc"], error["msg"]) == ((variable,), why)


@pytest.mark.parametrize(
    ("value", "kept"), [(" 60/minute ", "60/minute"), ("5 per hour", "5 per hour")]
)
def test_a_rate_limit_is_kept_as_written(monkeypatch, value, kept):
    assert make(monkeypatch, RABTA_LIMIT_IP=value).limit_ip == kept


def test_the_app_refuses_a_bad_limit_before_it_serves(monkeypatch):
    """`uvicorn api.main:app` builds the app from the environment: a limit it cannot apply is
    named as the app is built, before any lifespan runs, in the settings' own words."""
    from pydantic import ValidationError

    from api.main import create_app
    from api.settings import get_settings

    monkeypatch.setenv("RABTA_LIMIT_OTP", "5/fortnight")
    get_settings.cache_clear()
    try:
        with pytest.raises(ValidationError, match="'5/fortnight' is not a rate limit"):
            create_app()
    finally:
        get_settings.cache_clear()
