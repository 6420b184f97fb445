"""One Settings object for the whole service (SPEC §9 "Environment")."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from limits import parse_many
from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.formatting import LANGUAGES as LANGUAGES  # the six, as the bot knows them

DEVELOPMENT_SECRET_KEY = "rabta-development-key-not-for-production"  # noqa: S105

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Database URL schemes that name no driver, and the async driver each means.
_ASYNC_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}


class RateLimitRefused(ValueError):
    """A rate limit that would not be applied as written; `kind` says why (`unreadable`,
    `several`, `zero`), for a caller that words it its own way (a partner's quota)."""

    def __init__(self, kind: Literal["unreadable", "several", "zero"], message: str) -> None:
        super().__init__(message)
        self.kind = kind


def one_rate_limit(text: str) -> str:
    """`text` stripped, if it is one rate limit in `limits` notation that lets something through
    (`60/minute`, `5 per hour`), else RateLimitRefused: the rule for every `RABTA_LIMIT_*` and
    for a partner's quota. `limits` reads only the first of several (`10/hour;100/day`) and drops
    the rest without a word, and `0/minute` refuses every request: neither is what was meant."""
    text = text.strip()
    try:
        items = parse_many(text)
    except ValueError:
        raise RateLimitRefused(
            "unreadable", f"{text!r} is not a rate limit; write it like 60/minute or 10/hour"
        ) from None
    if len(items) > 1:
        raise RateLimitRefused(
            "several",
            f"{text!r} is several limits, and only the first would be applied; write one, "
            "like 60/minute",
        )
    if items[0].amount < 1:
        raise RateLimitRefused(
            "zero", f"{text!r} lets nothing through; write one of at least 1, like 60/minute"
        )
    return text


class Settings(BaseSettings):
    """Configuration read from the environment; production refuses unsafe defaults."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    rabta_env: Literal["development", "production"] = Field("development", alias="RABTA_ENV")
    database_url: str = Field("sqlite+aiosqlite:///var/rabta.db", alias="DATABASE_URL")
    registry_database_url: str | None = Field(None, alias="REGISTRY_DATABASE_URL")
    redis_url: str | None = Field(None, alias="REDIS_URL")
    secret_key: str = Field(DEVELOPMENT_SECRET_KEY, alias="RABTA_SECRET_KEY")
    public_base_url: str = Field("http://127.0.0.1:8000", alias="PUBLIC_BASE_URL")

    twilio_account_sid: str | None = Field(None, alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: str | None = Field(None, alias="TWILIO_AUTH_TOKEN")
    #: The token being rotated out: webhooks signed with it are accepted too, so Twilio's switch
    #: from the old primary token to the new one loses nothing (docs/security.md). Never used to
    #: call Twilio's API; remove it once the new token is primary.
    twilio_auth_token_previous: str | None = Field(None, alias="TWILIO_AUTH_TOKEN_PREVIOUS")
    twilio_from: str | None = Field(None, alias="TWILIO_FROM")
    twilio_whatsapp_from: str | None = Field(None, alias="TWILIO_WHATSAPP_FROM")

    #: Twilio Content SID of an approved WhatsApp template `{{1}}: {{2}}` for grievance updates
    #: outside the 24-hour window (the complaint and its masked CNIC, then its status); without
    #: one such updates go by SMS.
    twilio_whatsapp_update_template: str | None = Field(
        None, alias="TWILIO_WHATSAPP_UPDATE_TEMPLATE"
    )

    telegram_bot_token: str | None = Field(None, alias="TELEGRAM_BOT_TOKEN")
    telegram_webhook_secret: str | None = Field(None, alias="TELEGRAM_WEBHOOK_SECRET")
    telegram_api_base_url: str | None = Field(None, alias="TELEGRAM_API_BASE_URL")

    outbound: Literal["console", "twilio"] | None = Field(None, alias="RABTA_OUTBOUND")
    console_outbox: Path = Field(Path("var/outbox.jsonl"), alias="RABTA_CONSOLE_OUTBOX")
    default_language: str = Field("ur", alias="RABTA_DEFAULT_LANGUAGE")

    limit_sender: str = Field("10/hour", alias="RABTA_LIMIT_SENDER")
    limit_cnic: str = Field("20/day", alias="RABTA_LIMIT_CNIC")
    limit_otp: str = Field("5/hour", alias="RABTA_LIMIT_OTP")

    #: Per client IP on the REST API (partners with an API key get their own quota instead).
    limit_ip: str = Field("60/minute", alias="RABTA_LIMIT_IP")
    #: A partner's quota unless `rabta partner create --quota` sets another.
    limit_partner: str = Field("1000/minute", alias="RABTA_LIMIT_PARTNER")

    #: OTP rules (SPEC §3).
    otp_ttl_seconds: int = Field(300, alias="RABTA_OTP_TTL")
    otp_max_attempts: int = Field(5, alias="RABTA_OTP_MAX_ATTEMPTS")
    otp_resend_seconds: int = Field(60, alias="RABTA_OTP_RESEND")
    #: How long a conversation stays verified for a CNIC after an OTP or a phone match.
    verification_ttl_seconds: int = Field(1800, alias="RABTA_VERIFICATION_TTL")
    #: Lifetime of the bearer token `POST /v1/otp/verify` returns.
    token_ttl_seconds: int = Field(900, alias="RABTA_TOKEN_TTL")

    #: Days to resolve a grievance, per category (JSON object); unknown categories use `other`.
    grievance_sla_days: dict[str, int] = Field(
        default_factory=lambda: {
            "payment_not_received": 7,
            "deduction_by_agent": 3,
            "biometric_failure": 7,
            "eligibility_dispute": 30,
            "data_correction": 15,
            "other": 15,
        },
        alias="RABTA_GRIEVANCE_SLA_DAYS",
    )

    #: Run outbox delivery inside the API process (handy for `make run`); the default is on in
    #: development and off in production, where `rabta worker` runs beside the API.
    embedded_worker: bool | None = Field(None, alias="RABTA_EMBEDDED_WORKER")

    #: Programme rules come from configuration, not code (SPEC §5.1).
    pmt_cutoff: float = Field(32.0, alias="RABTA_PMT_CUTOFF")
    #: Largest request body accepted anywhere; gateways never send more.
    max_body_bytes: int = Field(64 * 1024, alias="RABTA_MAX_BODY_BYTES")

    @field_validator("database_url", "registry_database_url")
    @classmethod
    def _async_driver(cls, url: str | None) -> str | None:
        """`postgresql://…` (the form most tools write) and `sqlite:///…` name no driver, and
        SQLAlchemy would pick a synchronous one Rabta does not ship: they mean asyncpg and
        aiosqlite. A URL naming its driver is kept as it is."""
        if url is None:
            return None
        scheme, separator, rest = url.partition("://")
        driver = _ASYNC_DRIVERS.get(scheme.lower()) if separator else None
        return f"{driver}://{rest}" if driver else url

    @field_validator("limit_sender", "limit_cnic", "limit_otp", "limit_ip", "limit_partner")
    @classmethod
    def _rate_limit(cls, text: str) -> str:
        """Refused here, by every way the service starts, rather than as the first worker's
        lifespan builds the limiter (`uvicorn api.main:app` showed only `limits`' traceback)."""
        try:
            return one_rate_limit(text)
        except RateLimitRefused as refused:
            # Without pydantic's "Value error, " before it: `rabta` prints "VARIABLE: why".
            raise PydanticCustomError("rate_limit", "{why}", {"why": str(refused)}) from None

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.default_language not in LANGUAGES:
            # `ur-Latn` or `ur_Latn`, in any case: language tags are case-insensitive.
            spelled = self.default_language.strip().replace("-", "_").lower()
            lang = next((code for code in LANGUAGES if code.lower() == spelled), None)
            if lang is None:
                raise ValueError(f"RABTA_DEFAULT_LANGUAGE must be one of {', '.join(LANGUAGES)}")
            self.default_language = lang
        if self.twilio_auth_token_previous and not self.twilio_auth_token:
            # Alone it would be ignored and leave webhooks unchecked, which is not what was meant.
            raise ValueError("TWILIO_AUTH_TOKEN_PREVIOUS is set without TWILIO_AUTH_TOKEN")
        if self.rabta_env != "production":
            return self
        problems = []
        if self.secret_key == DEVELOPMENT_SECRET_KEY or len(self.secret_key) < 32:
            problems.append("RABTA_SECRET_KEY must be set to a random value of 32+ characters")
        if not self.twilio_auth_token:
            problems.append("TWILIO_AUTH_TOKEN must be set: webhooks must be signed")
        missing = self._missing_twilio_credentials()
        if missing and self.outbound != "console":
            # Console outbound writes OTPs and updates to a file inside the container: a
            # deployment gets it only by asking, never by leaving a credential out.
            problems.append(
                f"{' and '.join(missing)} must be set to send messages through Twilio "
                "(or RABTA_OUTBOUND=console to write them to a file instead)"
            )
        if self.telegram_bot_token and not self.telegram_webhook_secret:
            problems.append("TELEGRAM_WEBHOOK_SECRET must be set when Telegram is on")
        if not self.redis_url:
            problems.append("REDIS_URL must be set: the in-process substitute serves one process")
        if self.database_url.startswith("sqlite"):
            problems.append("DATABASE_URL must point at PostgreSQL in production")
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self

    @property
    def is_production(self) -> bool:
        return self.rabta_env == "production"

    @property
    def run_embedded_worker(self) -> bool:
        return self.embedded_worker if self.embedded_worker is not None else not self.is_production

    @property
    def twilio_webhook_tokens(self) -> tuple[str, ...]:
        """The tokens a Twilio webhook's signature may be made with: the current one, then the
        one being rotated out; none when webhooks are not checked (no TWILIO_AUTH_TOKEN)."""
        if not self.twilio_auth_token:
            return ()
        if self.twilio_auth_token_previous:
            return (self.twilio_auth_token, self.twilio_auth_token_previous)
        return (self.twilio_auth_token,)

    @property
    def registry_url(self) -> str:
        return self.registry_database_url or self.database_url

    @property
    def outbound_mode(self) -> Literal["console", "twilio"]:
        if self.outbound:
            return self.outbound
        return "console" if self._missing_twilio_credentials() else "twilio"

    def _missing_twilio_credentials(self) -> list[str]:
        """The variables Twilio outbound needs that are unset (the production check names them)."""
        credentials = {
            "TWILIO_ACCOUNT_SID": self.twilio_account_sid,
            "TWILIO_AUTH_TOKEN": self.twilio_auth_token,
            "TWILIO_FROM": self.twilio_from,
        }
        return [name for name, value in credentials.items() if not value]


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests clear the cache to change them)."""
    return Settings()
