"""Schemathesis against the real app's `/openapi.json`, through its ASGI transport, on the test
database with the small registry: every operation, at least 1,000 generated cases for each
operation that takes input, no 5xx, and every answer as the schema declares it (status, media
type, headers, body)."""

from __future__ import annotations

import itertools
import secrets
from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode
from schemathesis.python import asgi as schemathesis_asgi

from api.otp.tokens import BeneficiaryTokens
from api.settings import Settings, get_settings
from api.telegram_cli import ChatUser, FakeBotApi, serve_fake_bot_api
from tests.conftest import (
    ELIGIBLE,
    ELIGIBLE_PHONE,
    ELIGIBLE_WIFE,
    NOT_ELIGIBLE,
    NOT_ELIGIBLE_PHONE,
    NOT_FOUND,
    UNDER_REVIEW,
)
from tests.security.figures import figure

pytestmark = pytest.mark.slow

CASES_PER_OPERATION = 1000
#: An operation without parameters or body only varies in its headers (credentials).
CASES_WITHOUT_INPUT = 200
#: Cases each operation got, filled as the tests run (the figure printed at the end).
CASES: Counter[str] = Counter()


def _operations() -> list[tuple[str, str]]:
    from api.main import create_app

    schema = create_app(Settings()).openapi()
    return sorted(
        (method.upper(), path)
        for path, methods in schema["paths"].items()
        for method in methods
        if method in ("get", "post", "put", "patch", "delete")
    )


OPERATIONS = _operations()

#: What every answer is checked for: no 5xx, and status, media type, headers and body as the
#: schema declares them; and a request that breaks the schema must be refused with a 4xx.
#: Left out: "a schema-valid request must be accepted", which does not hold for input whose
#: meaning is checked beyond its shape (`/v1/eligibility/{cnic}` takes any string, since a CNIC
#: may be typed with dashes, spaces or Urdu digits, and answers a declared 422 problem for one
#: that is not a CNIC; a second code request inside the resend minute is a declared 429); and the
#: checks that replay requests (auth removed, resources deleted), which the security tests cover.
CONFORMANCE = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]
STRICT = [*CONFORMANCE, schemathesis.checks.negative_data_rejection]
#: Webhook forms are read leniently on purpose (Twilio adds fields without notice, every form
#: value is a string, a long Body is cut at 1600 characters): a form that breaks the declared
#: shape may still be a message to answer. The same for a grievance's description, which is
#: cleaned (control characters removed) before its length is checked. They must still never get
#: a 5xx or an undeclared answer.
LENIENT_OPERATIONS = {"POST /v1/me/grievances"}


TELEGRAM_TOKEN = "123456:FUZZ-telegram-token"
TELEGRAM_SECRET = "fuzz-secret-0123456789abcdef"


@pytest.fixture
def fake_bot_api() -> Iterator[FakeBotApi]:
    """A local Bot API in schemathesis' ASGI event loop (the app's replies go there)."""
    fake = FakeBotApi()
    portal = schemathesis_asgi._get_portal()
    with portal.wrap_async_context_manager(serve_fake_bot_api(fake)):
        yield fake


@pytest.fixture
def fuzz_env(
    settings: Settings, fake_bot_api: FakeBotApi, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """The fixtures' settings with Telegram on (against the fake Bot API), the per-IP REST
    limit lifted (otherwise after 60 calls a minute every case would only exercise the 429
    path) and no load shedding (hypothesis sends one request at a time anyway)."""
    monkeypatch.setenv("RABTA_LIMIT_IP", "1000000/minute")
    monkeypatch.setenv("RABTA_SURGE_MAX_IN_FLIGHT", "0")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TELEGRAM_TOKEN)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", TELEGRAM_SECRET)
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", fake_bot_api.base_url)
    from api import surge

    surge.get_surge_settings.cache_clear()
    get_settings.cache_clear()
    yield get_settings()
    surge.get_surge_settings.cache_clear()


@pytest.fixture
async def fuzz_app(fuzz_env: Settings, registry, redis):
    """The app (its lifespan is started by schemathesis' ASGI client, in its own thread), and a
    live bearer token for the registry's eligible wife, so /v1/me is reached past the 401."""
    from api.main import create_app

    app = create_app(fuzz_env)
    tokens = BeneficiaryTokens(redis, ttl_seconds=3600, secret=fuzz_env.secret_key)
    app.state.fuzz_token = await tokens.issue(cnic=ELIGIBLE_WIFE)
    try:
        yield app
    finally:
        schemathesis_asgi.shutdown_lifespans()


# -- what gateways and partners really send, mixed into the generated cases ------------------

KNOWN = [ELIGIBLE, ELIGIBLE_WIFE, NOT_ELIGIBLE, UNDER_REVIEW, NOT_FOUND]
cnic_spelling = st.builds(
    lambda digits, sep, urdu: (
        f"{digits[:5]}{sep}{digits[5:12]}{sep}{digits[12]}".translate(URDU)
        if urdu
        else f"{digits[:5]}{sep}{digits[5:12]}{sep}{digits[12]}"
    ),
    st.one_of(st.sampled_from(KNOWN), st.from_regex(r"[0-9]{13}", fullmatch=True)),
    st.sampled_from(["", "-", " ", "."]),
    st.booleans(),
)
URDU = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
phone = st.one_of(
    st.sampled_from([ELIGIBLE_PHONE, NOT_ELIGIBLE_PHONE, "+923219876543"]),
    st.from_regex(r"\+923[0-4][0-9]{8}", fullmatch=True),
)
words = st.sampled_from(
    [
        "HELP",
        "menu",
        "PAY",
        "pay",
        "COMPLAINT",
        "shikayat",
        "TRACK",
        "LANG EN",
        "LANG UR",
        "LANG RU",
        "STOP",
        "START",
        "1",
        "2",
        "3",
        "0",
        "00",
        "123456",
        "مدد",
        "ادائیگی",
        "شکایت",
        "G-7K3M9Q",
    ]
)
message = st.one_of(
    words,
    cnic_spelling,
    st.tuples(
        words, st.sampled_from([" ", "\n"]), st.one_of(cnic_spelling, st.text(max_size=40))
    ).map("".join),
    st.text(max_size=200),
)
ussd_path = st.lists(
    st.one_of(st.sampled_from(["1", "2", "3", "4", "5", "0", "00", "9"]), cnic_spelling),
    max_size=6,
).map("*".join)
update_ids = itertools.count(880_000_000)


def realistic(case, path: str, data: st.DataObject) -> None:
    """Replace the generated values with ones the service recognises, so the cases reach past
    input validation into the flows (registry look-ups, conversations, codes, complaints)."""
    if path == "/v1/eligibility/{cnic}":
        case.path_parameters = {"cnic": data.draw(cnic_spelling)}
    elif path == "/v1/otp":
        case.body = {"cnic": data.draw(cnic_spelling)}
    elif path == "/webhooks/twilio/messaging":
        sender = data.draw(phone)
        case.body = {
            "MessageSid": "SM" + secrets.token_hex(16),
            "From": data.draw(st.sampled_from([sender, f"whatsapp:{sender}"])),
            "To": "+15005550006",
            "Body": data.draw(message),
        }
    elif path == "/webhooks/twilio/status":
        case.body = {
            "MessageSid": "SM" + secrets.token_hex(16),
            "MessageStatus": data.draw(
                st.sampled_from(["queued", "sent", "delivered", "undelivered", "failed", "read"])
            ),
            "ErrorCode": data.draw(st.sampled_from(["", "30003", "21610"])),
        }
    elif path == "/webhooks/ussd":
        case.body = {
            "sessionId": "ATUid_" + secrets.token_hex(8),
            "serviceCode": "*262#",
            "phoneNumber": data.draw(phone),
            "networkCode": "41001",
            "text": data.draw(ussd_path),
        }
    elif path == "/webhooks/telegram":
        user = ChatUser(data.draw(st.integers(5_000_000_000, 5_000_000_050)), first_name="A")
        kind = data.draw(st.sampled_from(["text", "contact", "press"]))
        if kind == "text":
            update = user.text(data.draw(message))
        elif kind == "contact":
            update = user.contact(data.draw(phone), own=data.draw(st.booleans()))
        else:
            update = user.press(data.draw(st.sampled_from(["menu", "lang:en", "x" * 64, ""])))
        update["update_id"] = next(update_ids)
        case.body = update


def strategy_for(operation, has_input: bool):
    positive = operation.as_strategy(GenerationMode.POSITIVE)
    if not has_input:
        return positive
    # A third of the cases break the schema on purpose: they must be refused with a 4xx.
    return st.one_of(positive, positive, operation.as_strategy(GenerationMode.NEGATIVE))


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_answers_as_declared(fuzz_app, method: str, path: str) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    operation = schema[path][method]
    label = f"{method} {path}"
    token = fuzz_app.state.fuzz_token
    has_input = bool(operation.path_parameters or operation.query or operation.body)
    seen = 0
    statuses: Counter[int] = Counter()

    @given(case=strategy_for(operation, has_input), data=st.data())
    @settings(
        max_examples=CASES_PER_OPERATION if has_input else CASES_WITHOUT_INPUT,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    def run(case, data) -> None:
        nonlocal seen
        seen += 1
        if case.meta is None or case.meta.generation.mode.is_positive:
            if data.draw(st.booleans()):
                realistic(case, path, data)
        headers = {}
        # Most cases carry the right credentials, so they reach the handler; the rest do not.
        if path.startswith("/v1/me") and seen % 4:
            headers["Authorization"] = f"Bearer {token}"
        if path == "/webhooks/telegram" and seen % 4:
            headers["X-Telegram-Bot-Api-Secret-Token"] = TELEGRAM_SECRET
        response = case.call(headers=headers)
        statuses[response.status_code] += 1
        lenient = path.startswith("/webhooks/") or label in LENIENT_OPERATIONS
        case.validate_response(response, checks=CONFORMANCE if lenient else STRICT, headers=headers)

    run()
    sent = sum(statuses.values())  # cases hypothesis kept (`seen` also counts discarded draws)
    CASES[label] = sent
    if has_input:
        assert sent >= CASES_PER_OPERATION, f"{label}: only {sent} cases"
    assert not [status for status in statuses if status >= 500]
    spread = ", ".join(f"{n}x{status}" for status, n in sorted(statuses.items()))
    figure(f"schemathesis {label}: {sent} cases ({spread}), 0 5xx, all conforming")
