"""The caller flow: CNIC search (coarse), code to the registered mobile, the record, overrides,
filing a grievance for the caller, and the audit entries each step leaves."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import types

import pytest
from sqlalchemy import select, update

from api.agent import i18n as agent_i18n
from api.agent import sessions
from api.agent.access import CallerAccess
from api.agent.routes import callers as callers_routes
from api.ratelimit.service import parse_limit
from api.registry.models import Grievance, OutboundMessage, Payment, Person
from tests.agent.conftest import PASSWORD, audit_entries, csrf_token, login, post_form
from tests.conftest import ELIGIBLE_PHONE, ELIGIBLE_WIFE, NOT_FOUND

WIFE_FORMATTED = "35202-1234567-2"
WIFE_MASKED = "35202-*******-2"


async def open_lookup(client, cnic: str = WIFE_FORMATTED) -> str:
    """Search a CNIC from the home page; the lookup page's path."""
    response = await post_form(client, "/agent", "/agent/callers", {"cnic": cnic})
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert re.fullmatch(r"/agent/callers/[A-Za-z0-9_-]{20,}", location)
    return location


async def sent_code(db, phone: str = ELIGIBLE_PHONE) -> str:
    """The code in the last OTP SMS queued for `phone`."""
    async with db.sessions() as session:
        body = await session.scalar(
            select(OutboundMessage.body)
            .where(OutboundMessage.kind == "otp", OutboundMessage.to == phone)
            .order_by(OutboundMessage.id.desc())
        )
    assert body, "no code was queued"
    return re.search(r"(?<!\d)\d{6}(?!\d)", body).group(0)


async def verified(client, db) -> str:
    """Search the wife's CNIC, send her a code and type it back: the lookup page's path."""
    lookup = await open_lookup(client)
    assert (await post_form(client, lookup, f"{lookup}/code", {})).status_code == 303
    response = await post_form(client, lookup, f"{lookup}/verify", {"code": await sent_code(db)})
    assert response.status_code == 303
    return lookup


async def test_a_search_shows_only_the_coarse_status_and_is_audited(new_client, staff, registry):
    amina = await new_client("amina")
    lookup = await open_lookup(amina)
    # The CNIC never travels in a URL (history, proxies, Referer): the lookup id stands for it.
    assert ELIGIBLE_WIFE not in lookup and "35202" not in lookup
    page = (await amina.get(lookup)).text
    assert "Eligible" in page
    assert WIFE_MASKED in page
    assert ELIGIBLE_WIFE not in page and WIFE_FORMATTED not in page
    assert "Nasreen" not in page and "PAY-0002" not in page and "Ichhra" not in page
    assert ">Send code</button>" in page
    assert '<label for="code">Code the caller reads back</label>' in page
    [entry] = await audit_entries(registry, action="lookup")
    assert (entry.actor, entry.record_type, entry.record_id) == ("amina", "person", ELIGIBLE_WIFE)
    assert await audit_entries(registry, action="view") == []


async def test_a_cnic_that_is_not_one_is_explained(new_client, staff):
    amina = await new_client("amina")
    response = await post_form(amina, "/agent", "/agent/callers", {"cnic": "12345"})
    assert response.status_code == 303 and response.headers["location"] == "/agent"
    assert "That is not a CNIC" in (await amina.get("/agent")).text


async def test_a_cnic_not_in_the_registry_offers_no_code(new_client, staff):
    amina = await new_client("amina")
    page = (await amina.get(await open_lookup(amina, NOT_FOUND))).text
    assert "Not found in the registry" in page
    assert "Send code" not in page


async def set_mobile(db, cnic: str, mobile: str | None) -> None:
    async with db.transaction() as session:
        await session.execute(update(Person).where(Person.cnic == cnic).values(mobile=mobile))


async def test_no_registered_mobile_spends_none_of_the_cnics_codes(new_client, staff, registry):
    await set_mobile(registry, ELIGIBLE_WIFE, None)
    amina = await new_client("amina")
    lookup = await open_lookup(amina)
    for _ in range(2):
        await post_form(amina, lookup, f"{lookup}/code", {})
        page = (await amina.get(lookup)).text
        assert "There is no registered mobile for this CNIC" in page
        assert "A code was sent less than a minute ago" not in page
    # Once a mobile is registered, a code goes at once: no cooldown, no hour of codes was spent.
    await set_mobile(registry, ELIGIBLE_WIFE, ELIGIBLE_PHONE)
    await post_form(amina, lookup, f"{lookup}/code", {})
    assert "Code sent to +92300****567" in (await amina.get(lookup)).text
    assert await sent_code(registry)
    assert len(await audit_entries(registry, action="send_code")) == 1


async def test_the_code_goes_to_the_registered_mobile_and_opens_the_record(
    new_client, staff, registry
):
    amina = await new_client("amina")
    lookup = await open_lookup(amina)
    response = await post_form(amina, lookup, f"{lookup}/code", {})
    assert response.status_code == 303
    page = (await amina.get(lookup)).text
    assert "Code sent to +92300****567" in page
    code = await sent_code(registry)
    wrong = "000000" if code != "000000" else "111111"
    await post_form(amina, lookup, f"{lookup}/verify", {"code": wrong})
    assert "Wrong code. 4 tries left." in (await amina.get(lookup)).text
    # Typed with Urdu digits and a space, as a caller's digits may be read and typed.
    urdu = "".join("۰۱۲۳۴۵۶۷۸۹"[int(d)] for d in code)
    await post_form(amina, lookup, f"{lookup}/verify", {"code": f"{urdu[:3]} {urdu[3:]}"})
    page = (await amina.get(lookup)).text
    assert "Caller verified by code." in page
    assert "Nasreen Bibi" in page
    assert WIFE_FORMATTED in page
    assert "PAY-0002" not in page  # payment ids are internal; tranches are what callers know
    assert "2026-Q4" in page and "Govt Girls High School, Ichhra" in page
    assert "13,500" in page
    assert "Kafaalat" in page and "Taleemi Wazaif" in page
    assert "+92300****567" in page and ELIGIBLE_PHONE not in page
    # The husband shows as a household member, masked.
    assert "35202-*******-1" in page and "Muhammad Aslam" not in page
    actions = [e.action for e in await audit_entries(registry, record_id=ELIGIBLE_WIFE)]
    assert actions == ["lookup", "send_code", "verify_failed", "verify", "view"]
    [view] = await audit_entries(registry, action="view")
    assert view.actor == "amina" and view.reason == "caller verified by code"
    # Every showing of the record is a view of its own.
    await amina.get(lookup)
    assert len(await audit_entries(registry, action="view")) == 2


def tranche_after(cnic: str) -> Payment:
    """The wife's Kafaalat tranche after 2026-Q4: 2027-Q1, scheduled."""
    return Payment(
        payment_id="PAY-0003",
        cnic=cnic,
        programme="kafaalat",
        tranche="2027-Q1",
        amount_pkr=14500,
        window_start=dt.date(2027, 2, 15),
        window_end=dt.date(2027, 3, 15),
        mode="campsite",
        place="Govt Girls High School, Ichhra",
        status="scheduled",
        reason=None,
    )


async def test_next_is_the_payment_the_caller_has_yet_to_collect(new_client, staff, registry):
    """2026-Q4 collected early in its open window: "Next" marks 2027-Q1, not 2026-Q4."""
    async with registry.transaction() as session:
        await session.execute(
            update(Payment).where(Payment.payment_id == "PAY-0002").values(status="collected")
        )
        session.add(tranche_after(ELIGIBLE_WIFE))
    amina = await new_client("amina")
    page = (await amina.get(await verified(amina, registry))).text
    [current] = re.findall(r'<tr class="current">\s*<td dir="ltr">([^<]+)<span', page)
    assert current.strip() == "2027-Q1"
    assert page.count("badge-next") == 1


def frozen_console_clock(monkeypatch, moment: dt.datetime) -> None:
    """The console's clock (its `datetime.now`) stopped at `moment`; the rest of Rabta runs on."""

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            return moment.astimezone(tz) if tz else moment.replace(tzinfo=None)

    clock = types.SimpleNamespace(**{**vars(dt), "datetime": Frozen})
    for module in (agent_i18n, callers_routes):
        monkeypatch.setattr(module, "dt", clock, raising=False)


async def test_next_goes_by_the_date_in_pakistan(new_client, staff, registry, monkeypatch):
    """At 01:30 on 25 Nov in Pakistan (20:30 UTC on the 24th) a window that closed on the 24th
    is behind the caller: "Next" marks the tranche after it, as it will for the rest of her day."""
    async with registry.transaction() as session:
        await session.execute(
            update(Payment)
            .where(Payment.payment_id == "PAY-0002")
            .values(window_start=dt.date(2026, 11, 1), window_end=dt.date(2026, 11, 24))
        )
        session.add(tranche_after(ELIGIBLE_WIFE))
    frozen_console_clock(monkeypatch, dt.datetime(2026, 11, 24, 20, 30, tzinfo=dt.UTC))
    amina = await new_client("amina")
    page = (await amina.get(await verified(amina, registry))).text
    [current] = re.findall(r'<tr class="current">\s*<td dir="ltr">([^<]+)<span', page)
    assert current.strip() == "2027-Q1"


async def test_the_record_is_this_agents_alone(new_client, staff, registry):
    amina = await new_client("amina")
    lookup = await verified(amina, registry)
    bilal = await new_client("bilal")
    # Someone else's lookup id opens nothing...
    assert (await bilal.get(lookup)).status_code == 404
    # ...and searching the same CNIC shows bilal the coarse status only.
    page = (await bilal.get(await open_lookup(bilal))).text
    assert "Eligible" in page and "Nasreen" not in page


async def test_the_record_closes_when_the_grant_ends(new_client, staff, registry, app):
    amina = await new_client("amina")
    lookup = await verified(amina, registry)
    assert "Nasreen" in (await amina.get(lookup)).text
    redis = app.state.runtime.redis
    session_key = sessions._key(amina.cookies["rabta_agent"])
    access = CallerAccess(redis, app.state.runtime.settings)
    await access.revoke(agent="amina", cnic=ELIGIBLE_WIFE, session=session_key)
    page = (await amina.get(lookup)).text
    assert "Nasreen" not in page and "Send code" in page


async def test_signing_out_closes_the_record_and_a_new_sign_in_does_not_reopen_it(
    new_client, staff, registry
):
    amina = await new_client("amina")
    lookup = await verified(amina, registry)
    assert "Nasreen" in (await amina.get(lookup)).text
    # Another browser signed in as amina (the shift's next computer) has not verified anyone.
    elsewhere = await new_client("amina")
    assert "Nasreen" not in (await elsewhere.get(lookup)).text
    signed_out = await post_form(amina, "/agent", "/agent/logout", {})
    assert signed_out.status_code == 303
    assert (await login(amina, "amina", PASSWORD)).status_code == 303
    page = (await amina.get(lookup)).text
    assert "Nasreen" not in page and "Send code" in page
    assert "Nasreen" not in (await elsewhere.get(lookup)).text
    # Filing for the caller needs the record open in this sign-in too.
    filed = await post_form(
        amina,
        lookup,
        f"{lookup}/grievances",
        {"category": "other", "description": "Test", "language": "ur"},
    )
    assert filed.status_code == 403


async def test_posts_without_the_csrf_token_are_refused(new_client, staff, registry):
    amina = await new_client("amina")
    lookup = await open_lookup(amina)
    before = len(await audit_entries(registry))
    for action, data in [
        ("/agent/callers", {"cnic": WIFE_FORMATTED}),
        (f"{lookup}/code", {}),
        ("/agent/logout", {}),
    ]:
        missing = await amina.post(action, data=data)
        assert missing.status_code == 403, action
        assert "This form has expired" in missing.text
        forged = await amina.post(action, data={**data, "csrf_token": "x" * 43})
        assert forged.status_code == 403, action
    assert len(await audit_entries(registry)) == before
    async with registry.sessions() as session:
        assert await session.scalar(select(OutboundMessage.id)) is None


async def test_another_sessions_token_does_not_work(new_client, staff):
    amina = await new_client("amina")
    bilal = await new_client("bilal")
    bilals_token = csrf_token((await bilal.get("/agent")).text)
    response = await amina.post(
        "/agent/callers", data={"cnic": WIFE_FORMATTED, "csrf_token": bilals_token}
    )
    assert response.status_code == 403


async def test_filing_a_grievance_for_the_caller(new_client, staff, registry):
    amina = await new_client("amina")
    lookup = await verified(amina, registry)
    response = await post_form(
        amina,
        lookup,
        f"{lookup}/grievances",
        {
            "category": "payment_not_received",
            "description": "Campsite was closed on the day of collection",
            "language": "ur",
        },
    )
    assert response.status_code == 303
    ticket = response.headers["location"].rsplit("/", 1)[1]
    assert re.fullmatch(r"G-[0-9A-Z]{6}", ticket)
    page = (await amina.get(response.headers["location"])).text
    assert f"Grievance {ticket} filed." in page
    assert "Campsite was closed" in page
    async with registry.sessions() as session:
        grievance = await session.scalar(select(Grievance).where(Grievance.ticket_id == ticket))
        sms = await session.scalar(
            select(OutboundMessage).where(OutboundMessage.grievance_id == grievance.id)
        )
    assert (grievance.filed_by, grievance.channel, grievance.cnic) == (
        "amina",
        "agent",
        ELIGIBLE_WIFE,
    )
    assert (grievance.district, grievance.language) == ("Lahore", "ur")
    # The caller hears back on her registered mobile, with the ticket id.
    assert sms.to == ELIGIBLE_PHONE and ticket in sms.body
    [entry] = await audit_entries(registry, action="file_grievance")
    assert (entry.actor, entry.record_type, entry.record_id) == ("amina", "grievance", ticket)
    # The record now lists it.
    assert ticket in (await amina.get(lookup)).text


def hidden_fields(page: str, action: str) -> dict[str, str]:
    """The hidden fields of the form on `page` that posts to `action`, as a browser sends them."""
    form = re.search(rf'<form method="post" action="{re.escape(action)}".*?</form>', page, re.S)
    assert form, f"no form posts to {action}"
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form[0]))


async def test_a_grievance_form_sent_twice_files_it_once(new_client, staff, registry):
    """A double click without JavaScript, or a browser sending the post again after its
    connection dropped: one grievance, one SMS to the caller, one audit entry, and both answers
    lead to it. The form of a page shown afresh files another."""
    amina = await new_client("amina")
    lookup = await verified(amina, registry)
    action = f"{lookup}/grievances"
    typed = {"category": "other", "description": "Agent kept 500 rupees", "language": "ur"}
    form = {**hidden_fields((await amina.get(lookup)).text, action), **typed}
    answers = [
        *await asyncio.gather(amina.post(action, data=form), amina.post(action, data=form)),
        await amina.post(action, data=form),
    ]
    assert {a.status_code for a in answers} == {303}
    [ticket_page] = {a.headers["location"] for a in answers}
    ticket = ticket_page.rsplit("/", 1)[1]
    async with registry.sessions() as session:
        filed = list(await session.scalars(select(Grievance.ticket_id)))
        sms = list(
            await session.scalars(select(OutboundMessage.id).where(OutboundMessage.kind != "otp"))
        )
    assert filed == [ticket]
    assert len(sms) == 1
    assert len(await audit_entries(registry, action="file_grievance")) == 1
    assert f"Grievance {ticket} filed." in (await amina.get(ticket_page)).text
    again = {**hidden_fields((await amina.get(lookup)).text, action), **typed}
    another = await amina.post(action, data=again)
    assert another.headers["location"] != ticket_page
    async with registry.sessions() as session:
        assert len(list(await session.scalars(select(Grievance.id)))) == 2


async def test_a_code_sent_twice_verifies_once_and_says_nothing_wrong(
    new_client, staff, registry, app
):
    """The verify form sent twice (a double click without JavaScript): the second found its
    code used by the first, and the record's page said "Send a code first." (or "The code has
    expired", with a failed verification audited) under "Caller verified"."""
    amina = await new_client("amina")
    lookup = await open_lookup(amina)
    assert (await post_form(amina, lookup, f"{lookup}/code", {})).status_code == 303
    form = {
        "csrf_token": csrf_token((await amina.get(lookup)).text),
        "code": await sent_code(registry),
    }
    access = CallerAccess(app.state.runtime.redis, app.state.runtime.settings)
    lookup_id = lookup.rsplit("/", 1)[1]
    as_sent = await access.get_lookup(lookup_id, agent="amina")
    answers = await asyncio.gather(
        amina.post(f"{lookup}/verify", data=form), amina.post(f"{lookup}/verify", data=form)
    )
    # The second read the call before the first was done with it: the code it names is used.
    await access.save_lookup(as_sent)
    answers.append(await amina.post(f"{lookup}/verify", data=form))
    assert {a.status_code for a in answers} == {303}
    page = (await amina.get(lookup)).text
    assert "Caller verified." in page and "Registered mobile" in page
    assert 'class="flash flash-error"' not in page
    assert len(await audit_entries(registry, action="verify")) == 1
    assert await audit_entries(registry, action="verify_failed") == []


async def test_no_grievance_without_verification(new_client, staff, registry):
    amina = await new_client("amina")
    lookup = await open_lookup(amina)
    response = await post_form(
        amina,
        lookup,
        f"{lookup}/grievances",
        {"category": "other", "description": "anything at all"},
    )
    assert response.status_code == 403
    async with registry.sessions() as session:
        assert await session.scalar(select(Grievance.id)) is None


async def test_an_agent_cannot_override(new_client, staff, registry):
    amina = await new_client("amina")
    lookup = await open_lookup(amina)
    response = await post_form(
        amina, lookup, f"{lookup}/override", {"reason": "caller lost her phone last week"}
    )
    assert response.status_code == 403
    assert "This page is for supervisors." in response.text
    assert await audit_entries(registry, action="override") == []


async def test_a_supervisor_overrides_with_a_written_reason(new_client, staff, registry):
    sadia = await new_client("sadia")
    lookup = await open_lookup(sadia)
    page = (await sadia.get(lookup)).text
    assert '<label for="override-reason">Reason</label>' in page
    short = await post_form(sadia, lookup, f"{lookup}/override", {"reason": "because"})
    assert short.status_code == 303
    assert "Write the reason" in (await sadia.get(lookup)).text
    reason = "Caller's SIM was blocked by PTA; verified by video call"
    await post_form(sadia, lookup, f"{lookup}/override", {"reason": reason})
    page = (await sadia.get(lookup)).text
    assert "Opened by override" in page and "Nasreen Bibi" in page
    [override] = await audit_entries(registry, action="override")
    assert (override.actor, override.record_id, override.reason) == ("sadia", ELIGIBLE_WIFE, reason)
    [view] = await audit_entries(registry, action="view")
    assert view.reason == f"override: {reason}"


async def test_an_override_sent_twice_is_recorded_once(new_client, staff, registry):
    """A supervisor's double click without JavaScript (or two posts at once) wrote the override
    twice in the audit log: the record is already open to her by the first."""
    sadia = await new_client("sadia")
    lookup = await open_lookup(sadia)
    form = {
        "csrf_token": csrf_token((await sadia.get(lookup)).text),
        "reason": "Caller's SIM was blocked by PTA; verified by video call",
    }
    action = f"{lookup}/override"
    answers = [
        *await asyncio.gather(sadia.post(action, data=form), sadia.post(action, data=form)),
        await sadia.post(action, data=form),
    ]
    assert {(a.status_code, a.headers["location"]) for a in answers} == {(303, lookup)}
    page = (await sadia.get(lookup)).text
    assert "Opened by override" in page and "Nasreen Bibi" in page
    [override] = await audit_entries(registry, action="override")
    assert (override.actor, override.reason) == ("sadia", form["reason"])


async def test_a_request_for_an_override_sent_twice_asks_once(new_client, staff, registry):
    """A double click without JavaScript put the same request twice in the supervisors' list;
    after a refusal the agent may ask again."""
    amina, sadia = await new_client("amina"), await new_client("sadia")
    lookup = await open_lookup(amina)
    form = {
        "csrf_token": csrf_token((await amina.get(lookup)).text),
        "reason": "Registered mobile is switched off; caller at the tehsil office",
    }
    action = f"{lookup}/override-request"
    answers = [
        *await asyncio.gather(amina.post(action, data=form), amina.post(action, data=form)),
        await amina.post(action, data=form),
    ]
    assert {(a.status_code, a.headers["location"]) for a in answers} == {(303, lookup)}
    assert "A supervisor has been asked." in (await amina.get(lookup)).text
    queue = (await sadia.get("/agent/overrides")).text
    assert queue.count("/deny") == 1
    assert len(await audit_entries(registry, action="override_request")) == 1
    refuse = re.search(r'action="(/agent/overrides/[^/]+/deny)"', queue)[1]
    await post_form(sadia, "/agent/overrides", refuse, {})
    await post_form(amina, lookup, action, {"reason": form["reason"]})
    assert (await sadia.get("/agent/overrides")).text.count("/deny") == 1
    assert len(await audit_entries(registry, action="override_request")) == 2


async def test_an_agent_asks_and_a_supervisor_approves(new_client, staff, registry):
    amina = await new_client("amina")
    sadia = await new_client("sadia")
    lookup = await open_lookup(amina)
    reason = "Registered mobile is switched off; caller at the tehsil office"
    await post_form(amina, lookup, f"{lookup}/override-request", {"reason": reason})
    page = (await amina.get(lookup)).text
    assert "Waiting for a supervisor" in page and "Nasreen" not in page
    # An agent may not see the supervisors' page.
    assert (await amina.get("/agent/overrides")).status_code == 403
    queue = (await sadia.get("/agent/overrides")).text
    assert "amina" in queue and WIFE_MASKED in queue and reason in queue
    assert ELIGIBLE_WIFE not in queue
    request_id = re.search(r"/agent/overrides/([^/]+)/approve", queue).group(1)
    response = await post_form(
        sadia, "/agent/overrides", f"/agent/overrides/{request_id}/approve", {}
    )
    assert response.status_code == 303
    assert "Approved: amina can open the record." in (await sadia.get("/agent/overrides")).text
    page = (await amina.get(lookup)).text
    assert "Nasreen Bibi" in page and "approved by sadia" in page
    # The supervisor did not get access herself.
    assert "Nasreen" not in (await sadia.get(await open_lookup(sadia))).text
    # Deciding twice does nothing.
    again = await post_form(sadia, "/agent/overrides", f"/agent/overrides/{request_id}/approve", {})
    assert again.status_code == 303
    assert "already decided" in (await sadia.get("/agent/overrides")).text
    actions = [
        (e.actor, e.action)
        for e in await audit_entries(registry, record_id=ELIGIBLE_WIFE)
        if e.action != "lookup"
    ]
    assert actions == [
        ("amina", "override_request"),
        ("sadia", "override_approve"),
        ("amina", "view"),
    ]
    [view] = await audit_entries(registry, action="view")
    assert view.reason == f"override (approved by sadia): {reason}"


async def test_a_refused_request_is_shown_to_the_agent(new_client, staff, registry):
    amina = await new_client("amina")
    sadia = await new_client("sadia")
    lookup = await open_lookup(amina)
    await post_form(
        amina, lookup, f"{lookup}/override-request", {"reason": "caller has no phone at all"}
    )
    queue = (await sadia.get("/agent/overrides")).text
    request_id = re.search(r"/agent/overrides/([^/]+)/deny", queue).group(1)
    await post_form(sadia, "/agent/overrides", f"/agent/overrides/{request_id}/deny", {})
    page = (await amina.get(lookup)).text
    assert "sadia refused the last request." in page and "Nasreen" not in page
    assert [e.actor for e in await audit_entries(registry, action="override_deny")] == ["sadia"]


async def test_searches_count_against_the_agents_hourly_limit(new_client, staff, app):
    limiter = app.state.runtime.rate_limiter
    limiter._defaults["agent"] = parse_limit("2/hour")
    amina = await new_client("amina")
    await open_lookup(amina)
    await open_lookup(amina)
    refused = await post_form(amina, "/agent", "/agent/callers", {"cnic": WIFE_FORMATTED})
    assert refused.status_code == 429
    assert "You have searched too many CNICs this hour." in refused.text
    # Another agent has a limit of her own.
    await open_lookup(await new_client("bilal"))


@pytest.mark.parametrize("path", ["/agent/callers/not-a-lookup", "/agent/callers/" + "x" * 200])
async def test_unknown_lookups_are_not_found(new_client, staff, path):
    amina = await new_client("amina")
    response = await amina.get(path)
    assert response.status_code == 404
    assert "This call has ended" in response.text


async def test_the_record_shows_when_each_grievance_is_due_and_which_are_past_it(
    new_client, staff, registry, settings
):
    """An angry caller asks about her complaint: the agent sees at once that it is late."""
    from tests.agent.test_grievances import file

    late = await file(registry, settings, days_ago=10)  # payment not received: 7 days
    fresh = await file(registry, settings, category="other")
    amina = await new_client("amina")
    page = (await amina.get(await verified(amina, registry))).text
    rows = {
        ticket: re.search(rf"<tr>\s*<td[^>]*><a[^>]*>{ticket}</a>.*?</tr>", page, re.S).group(0)
        for ticket in (late, fresh)
    }
    assert "Past SLA" in rows[late] and "Past SLA" not in rows[fresh]
    assert '<th scope="col">Due</th>' in page
    due = agent_i18n.as_pkt(dt.datetime.now(dt.UTC) + dt.timedelta(days=15))
    assert agent_i18n.format_day(due.date(), "en") in rows[fresh]


def focused(page: str) -> str:
    """The one element of a page that takes the focus when it opens: its tag and any text."""
    [element] = re.findall(
        r"<(?:input|button|textarea|select)\b[^>]*\bautofocus\b[^>]*>[^<]*", page
    )
    return element


async def test_each_step_of_verifying_puts_the_focus_where_the_agent_goes_next(
    new_client, staff, registry
):
    """Keyboard only: after the search Enter sends the code, after sending the agent types it."""
    amina = await new_client("amina")
    lookup = await open_lookup(amina)
    assert "Send code" in focused((await amina.get(lookup)).text)
    await post_form(amina, lookup, f"{lookup}/code", {})
    assert 'id="code"' in focused((await amina.get(lookup)).text)
    for _ in range(5):  # the code's tries spent: a new one must be sent, from its button
        await post_form(amina, lookup, f"{lookup}/verify", {"code": "000000x"})
    page = (await amina.get(lookup)).text
    assert "Too many wrong codes: send a new one." in page
    assert "Send code" in focused(page)


async def test_no_registered_mobile_is_said_before_the_agent_tries_to_send_a_code(
    new_client, staff, registry
):
    await set_mobile(registry, ELIGIBLE_WIFE, None)
    amina = await new_client("amina")
    page = (await amina.get(await open_lookup(amina))).text
    assert "There is no registered mobile for this CNIC" in page
    assert "Ask a supervisor for an override." in page
    assert "Send code" not in page and 'id="code"' not in page
    assert 'id="request-reason"' in focused(page)


async def test_no_registered_mobile_tells_each_role_what_it_can_do(new_client, staff, registry):
    """An agent is told to ask a supervisor; a supervisor (or an admin) is the one who can open
    the record, and is told to, not to ask a supervisor."""
    await set_mobile(registry, ELIGIBLE_WIFE, None)
    for username in ("sadia", "zara"):
        client = await new_client(username)
        lookup = await open_lookup(client)
        page = (await client.get(lookup)).text
        assert "There is no registered mobile for this CNIC" in page
        assert "Open the record by override instead" in page
        assert "Ask a supervisor" not in page and 'id="override-reason"' in focused(page)
        # A code asked for anyway (a page opened before the mobile was taken off) says the same.
        await post_form(client, lookup, f"{lookup}/code", {})
        page = (await client.get(lookup)).text
        assert page.count("Open the record by override instead") == 2
        assert "Ask a supervisor" not in page
    amina = await new_client("amina")
    lookup = await open_lookup(amina)
    await post_form(amina, lookup, f"{lookup}/code", {})
    page = (await amina.get(lookup)).text
    assert page.count("Ask a supervisor for an override.") == 2
    assert "Open the record by override instead" not in page


async def test_a_refused_grievance_or_reason_comes_back_as_it_was_typed(
    new_client, staff, registry
):
    from tests.agent.test_grievances import textarea

    amina = await new_client("amina")
    lookup = await verified(amina, registry)
    description = "Campsite at Ichhra was shut on the collection day; the agent said come later."
    sent = {"category": "", "description": description, "language": "pa_Arab"}
    await post_form(amina, lookup, f"{lookup}/grievances", sent)
    page = (await amina.get(lookup)).text
    assert "Choose the kind of grievance." in page
    assert textarea(page, "description") == description
    assert re.search(r'<option value="pa_Arab" selected>', page)
    # An override asked with too short a reason keeps the words to add to.
    bilal = await new_client("bilal")
    other = await open_lookup(bilal)
    await post_form(bilal, other, f"{other}/override-request", {"reason": "lost it"})
    page = (await bilal.get(other)).text
    assert "Write the reason" in page and textarea(page, "request-reason") == "lost it"
