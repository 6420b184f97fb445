"""What the least-privileged receiver of each path learns (SPEC §3): anyone with a CNIC, on any
channel, learns its coarse status and nothing more.

The attacker is a cheap phone (or a partner app without a token) holding the CNICs of the test
registry and a complainant's ticket id: it texts every command on SMS and WhatsApp, walks every
USSD menu from an unregistered number, talks to the Telegram bot after sharing someone else's
contact card, and calls every `/v1` route without a token, or with a token of another person.
Every answer is searched for what only a verified conversation may see: a name, an amount, a
collection place, a district, a programme, a complaint's text, and any full CNIC or phone number.
What each answer may carry instead is checked too: the CNIC it is about, masked.
"""

from __future__ import annotations

import re

import pytest

from api.telegram_cli import ChatUser
from tests.api.test_sms_grievances import TICKET, file_as_wife
from tests.api.test_sms_payments import Chat, delivered_code
from tests.conftest import (
    ELIGIBLE,
    ELIGIBLE_PHONE,
    ELIGIBLE_WIFE,
    NOT_ELIGIBLE,
    NOT_ELIGIBLE_PHONE,
    NOT_FOUND,
    UNDER_REVIEW,
    UNDER_REVIEW_PHONE,
)
from tests.security.figures import figure
from tests.telegram.conftest import (  # noqa: F401 - fixtures, used by name
    TelegramChat,
    fake_api,
    telegram_settings,
    tg_app,
    tg_client,
)
from tests.ussd.conftest import Dial

#: The complaint the owner files before the attacker starts: its words are hers.
COMPLAINT_TEXT = "retailer Akram ne 2000 kaat liye"
#: What only the verified person may learn, as the test registry (tests/conftest.py) holds it.
PRIVATE = (
    # names
    "Aslam",
    "Nasreen",
    "Ghulam",
    "Rasool",
    "Zarina",
    # amounts and places of payments
    "13,500",
    "13500",
    "Ichhra",
    "HBL",
    "School",
    # the household's district and tehsil
    "Lahore",
    "Karachi",
    "Peshawar",
    "Gulberg",
    # programmes the person is enrolled in
    "Kafaalat",
    "Taleemi",
    "Nashonuma",
    # the complaint's words
    "Akram",
    "kaat",
)
CNICS = (ELIGIBLE, ELIGIBLE_WIFE, NOT_ELIGIBLE, UNDER_REVIEW, NOT_FOUND)
PHONES = (ELIGIBLE_PHONE, NOT_ELIGIBLE_PHONE, UNDER_REVIEW_PHONE)
#: Unregistered numbers, one per CNIC probed (each within its 10 look-ups an hour).
STRANGERS = [f"+9232100000{n:02d}" for n in range(20)]


def masked(cnic: str) -> str:
    return f"{cnic[:5]}-*******-{cnic[12]}"


def leaks(text: str) -> list[str]:
    """What in `text` goes beyond the coarse tier."""
    found = [word for word in PRIVATE if word.lower() in text.lower()]
    digits = re.sub(r"[^0-9]", "", text)
    found += [f"full CNIC {c}" for c in CNICS if c in digits]
    found += [f"full phone {p}" for p in PHONES if p.removeprefix("+92") in digits]
    return found


@pytest.fixture
async def ticket(client, registry) -> str:
    """A complaint filed by the wife, from the phone registered to her."""
    filed = await file_as_wife(Chat(client, ELIGIBLE_PHONE), COMPLAINT_TEXT)
    return TICKET.search(filed).group(0)


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
async def test_a_stranger_texting_learns_the_coarse_status_only(client, registry, ticket, channel):
    # The search finds what it looks for: the person's own phone sees her payment.
    owner = Chat(client, ELIGIBLE_PHONE, channel=channel)
    await owner.send("LANG EN")
    assert "13,500" in leaks(await owner.send(f"PAY {ELIGIBLE_WIFE}"))
    answers: dict[str, str] = {}
    strangers = iter(STRANGERS)
    for cnic in CNICS:
        chat = Chat(client, next(strangers), channel=channel)
        await chat.send("LANG EN")
        for body in (cnic, f"PAY {cnic}", "COMPLAINT", cnic, "TRACK", "PAY"):
            answers[f"{cnic}: {body}"] = answer = await chat.send(body)
            if body in (cnic, f"PAY {cnic}"):
                assert masked(cnic) in answer, f"{body!r} does not name its CNIC: {answer}"
    chat = Chat(client, next(strangers), channel=channel)
    for body in (f"TRACK {ticket}", "HELP", "STOP", "START", "123456", ELIGIBLE_PHONE, "G-AAAAAA"):
        answers[body] = await chat.send(body)
    found = {said: leaks(answer) for said, answer in answers.items() if leaks(answer)}
    assert found == {}, found
    figure(f"{channel} stranger: {len(answers)} answers, 0 beyond the coarse tier")


async def test_a_stranger_dialling_ussd_learns_the_coarse_status_only(client, registry, ticket):
    screens: dict[str, str] = {}
    strangers = iter(STRANGERS)
    for cnic in CNICS:
        phone = Dial(client, next(strangers))
        await phone.dial()
        await phone.send("5")  # the language menu: English
        await phone.send("1")
        for path in (["1", cnic], ["2", cnic], ["3", cnic], ["4", "1", ticket], ["4", "2", cnic]):
            await phone.dial()
            for step in path:
                screens[f"{cnic}: {'*'.join(path[: path.index(step) + 1])}"] = await phone.send(
                    step
                )
        lookup = screens[f"{cnic}: 1*{cnic}"]
        assert masked(cnic) in lookup, f"the look-up does not name its CNIC: {lookup}"
    found = {path: leaks(screen) for path, screen in screens.items() if leaks(screen)}
    assert found == {}, found
    figure(f"USSD from an unregistered number: {len(screens)} screens, 0 beyond the coarse tier")


async def test_a_telegram_user_sharing_someone_elses_contact_learns_the_coarse_status_only(
    tg_client,  # noqa: F811 - the fixture
    fake_api,  # noqa: F811
    registry,
):
    owner = Chat(tg_client, ELIGIBLE_PHONE)
    ticket_id = TICKET.search(await file_as_wife(owner, COMPLAINT_TEXT)).group(0)
    chat = TelegramChat(tg_client, fake_api, ChatUser(7000000001, first_name="Stranger"))
    await chat.send("LANG EN")
    # The registered mobile's card, shared by someone else (or forwarded): it proves nothing.
    assert "someone else's number" in await chat.share(ELIGIBLE_PHONE, own=False)
    before = len(fake_api.sent)
    for body in (ELIGIBLE_WIFE, f"PAY {ELIGIBLE_WIFE}", "PAY", f"TRACK {ticket_id}", "TRACK"):
        await chat.send(body)
    await chat.share(ELIGIBLE_PHONE, own=False)
    await chat.press("PAY")
    sent = fake_api.sent[before:]
    # The text of every message, and every button's label and data.
    seen = [m["text"] for m in sent] + [
        str(b)
        for m in sent
        for row in (m.get("reply_markup") or {}).get("inline_keyboard", [])
        for b in row
    ]
    found = {text: leaks(text) for text in seen if leaks(text)}
    assert found == {}, found
    figure(f"Telegram, another's contact shared: {len(seen)} texts and buttons, 0 beyond the tier")


async def test_a_partner_app_without_the_persons_token_learns_the_coarse_status_only(
    client, app, settings, registry, ticket
):
    answers: dict[str, str] = {}
    for cnic in CNICS:
        looked_up = await client.get(f"/v1/eligibility/{cnic}")
        assert looked_up.status_code == 200
        assert looked_up.json()["cnic_masked"] == masked(cnic)
        answers[f"GET eligibility {cnic}"] = looked_up.text + str(looked_up.headers)
        if cnic != UNDER_REVIEW:  # (its code is asked below, for a token)
            issued = await client.post("/v1/otp", json={"cnic": cnic})
            assert issued.status_code == 202
            answers[f"POST otp {cnic}"] = issued.text
    for path in ("/v1/me", "/v1/me/payments", "/v1/me/grievances", f"/v1/me/grievances/{ticket}"):
        refused = await client.get(path)
        assert refused.status_code == 401
        answers[path] = refused.text
    # A token of another person (verified for the CNIC under review) reads nothing of the
    # wife's: her ticket is as unknown to it as a ticket nobody filed.
    request = await client.post("/v1/otp", json={"cnic": UNDER_REVIEW})
    code = await delivered_code(app, settings, UNDER_REVIEW_PHONE)
    verified = await client.post(
        "/v1/otp/verify", json={"request_id": request.json()["request_id"], "code": code}
    )
    token = {"Authorization": f"Bearer {verified.json()['access_token']}"}
    hers = await client.get(f"/v1/me/grievances/{ticket}", headers=token)
    nobodys = await client.get("/v1/me/grievances/G-AAAAAA", headers=token)
    assert hers.status_code == nobodys.status_code == 404
    assert hers.json()["detail"] == nobodys.json()["detail"]
    answers["her ticket"] = hers.text
    mine = await client.get("/v1/me/grievances", headers=token)
    assert mine.json() == {"grievances": []}
    found = {said: leaks(answer) for said, answer in answers.items() if leaks(answer)}
    assert found == {}, found
    figure(f"REST without the person's token: {len(answers)} answers, 0 beyond the coarse tier")


async def test_the_wait_for_a_code_names_the_cnic_it_is_about(client, registry):
    """SPEC §3: every answer about a CNIC names it masked. A helper asking for two people's
    payments, one of whose codes went out a moment ago (from another phone), cannot tell
    which of the answers says "wait"."""
    first, helper = Chat(client, STRANGERS[0]), Chat(client, STRANGERS[1])
    await first.send("LANG EN")
    await helper.send("LANG EN")
    await first.send(f"PAY {NOT_ELIGIBLE}")
    answer = await helper.send(f"PAY {NOT_ELIGIBLE}")
    assert "a moment ago" in answer
    assert masked(NOT_ELIGIBLE) in answer


async def test_a_complaint_filed_and_listed_on_telegram_names_the_cnic(
    tg_client,  # noqa: F811 - the fixture
    fake_api,  # noqa: F811
    registry,
):
    """SPEC §3: the ticket a helper files and the list TRACK shows say whose they are."""
    chat = TelegramChat(tg_client, fake_api)
    await chat.send("LANG EN")
    await chat.share(NOT_ELIGIBLE_PHONE)
    await chat.send("COMPLAINT paise nahi mile")
    await chat.send("1")
    filed = await chat.send("1")
    assert "is filed" in filed and masked(NOT_ELIGIBLE) in filed
    listed = await chat.send("TRACK")
    assert TICKET.search(filed).group(0) in listed and masked(NOT_ELIGIBLE) in listed
