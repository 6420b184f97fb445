"""A form sent after the agent's session ended is not acted on (CSRF and the audit log need a
live session), but what she wrote in it is not lost: signing in again, as herself, leads back
to the form holding it, to send again. Nobody else signing in at that browser ever sees it."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx

from api.agent.sessions import _key as session_key
from tests.agent.conftest import PASSWORD, audit_entries, csrf_token
from tests.agent.test_callers import open_lookup, set_mobile, verified
from tests.agent.test_grievances import events, file, textarea
from tests.conftest import ELIGIBLE_WIFE

ORIGIN = "http://127.0.0.1:8000"
NOTE = "Your payment is at the Ichhra campsite from Monday & bring your CNIC."


async def idle_out(app, client: httpx.AsyncClient) -> None:
    """An hour without a request: the session's own record is gone from Redis (its timer ran
    out), the browser still holds its cookie."""
    await app.state.runtime.redis.delete(session_key(client.cookies["rabta_agent"]))


async def sign_in_again(client: httpx.AsyncClient, sent: httpx.Response, username: str):
    """Follow a refused form to the login page and sign in there: (login page, answer)."""
    shown = await client.get(sent.headers["location"])
    assert shown.status_code == 200
    next_path = re.search(r'name="next" value="([^"]*)"', shown.text).group(1)
    answer = await client.post(
        "/agent/login",
        data={
            "username": username,
            "password": PASSWORD,
            "csrf_token": csrf_token(shown.text),
            "next": unescape(next_path),
        },
    )
    assert answer.status_code == 303, answer.text
    return shown, answer


def selected(html: str, select_id: str) -> str | None:
    block = re.search(rf'<select id="{select_id}".*?</select>', html, re.S)
    assert block, f"no select {select_id}"
    chosen = re.search(r'<option value="([^"]*)" selected>', block.group(0))
    return chosen.group(1) if chosen else None


async def test_a_note_sent_after_the_session_ended_comes_back_after_signing_in(
    new_client, staff, registry, settings, app
):
    ticket = await file(registry, settings)
    page = f"/agent/grievances/{ticket}"
    amina = await new_client("amina")
    token = csrf_token((await amina.get(page)).text)
    await idle_out(app, amina)
    sent = await amina.post(f"{page}/notes", data={"note": NOTE, "csrf_token": token})
    assert sent.status_code == 303
    location = urlsplit(sent.headers["location"])
    assert location.path == "/agent/login"
    assert parse_qs(location.query) == {"next": [page], "unsaved": ["kept"]}
    shown, answer = await sign_in_again(amina, sent, "amina")
    assert "what you had written is kept" in shown.text
    # Nothing was done while signed out...
    assert [e.action for e in await events(registry, ticket)] == ["filed"]
    assert await audit_entries(registry, action="add_note") == []
    # ...and signing in leads back to the grievance, the note in its box, to send again.
    assert answer.headers["location"] == page
    back = (await amina.get(page)).text
    assert textarea(back, "caller-note") == NOTE
    assert textarea(back, "note") == ""
    assert "is back in its form" in back
    # Given back once: the page after it starts empty again, and nothing is left in Redis.
    assert textarea((await amina.get(page)).text, "caller-note") == ""
    redis = app.state.runtime.redis
    assert [k async for k in redis.scan_iter("rabta:agent:session:*:unsent")] == []
    # Sent again from the form, it is added now.
    await amina.post(f"{page}/notes", data={"note": NOTE, "csrf_token": csrf_token(back)})
    assert [e.note for e in await events(registry, ticket)][1:] == [NOTE]


async def test_each_form_gets_back_its_own_fields(new_client, staff, registry, settings, app):
    ticket = await file(registry, settings)
    page = f"/agent/grievances/{ticket}"
    # An internal note goes back to the internal note's box.
    amina = await new_client("amina")
    token = csrf_token((await amina.get(page)).text)
    await idle_out(app, amina)
    sent = await amina.post(
        f"{page}/notes", data={"note": "Called the campsite", "internal": "1", "csrf_token": token}
    )
    await sign_in_again(amina, sent, "amina")
    back = (await amina.get(page)).text
    assert textarea(back, "note") == "Called the campsite"
    assert textarea(back, "caller-note") == ""
    # An agent's reason for escalating, to the escalation form.
    token = csrf_token(back)
    await idle_out(app, amina)
    sent = await amina.post(
        f"{page}/status",
        data={"to": "escalated", "note": "Retailer deducted Rs 500", "csrf_token": token},
    )
    await sign_in_again(amina, sent, "amina")
    assert textarea((await amina.get(page)).text, "escalate-note") == "Retailer deducted Rs 500"
    # A supervisor's status change: the status chosen and the note for the caller.
    sadia = await new_client("sadia")
    token = csrf_token((await sadia.get(page)).text)
    await idle_out(app, sadia)
    sent = await sadia.post(
        f"{page}/status", data={"to": "resolved", "note": NOTE, "csrf_token": token}
    )
    await sign_in_again(sadia, sent, "sadia")
    back = (await sadia.get(page)).text
    assert textarea(back, "status-note") == NOTE and selected(back, "to") == "resolved"
    assert [e.action for e in await events(registry, ticket)] == ["filed"]
    # A CNIC typed in the search box is not kept (Redis keeps no CNIC in clear): thirteen
    # digits are typed again, and the sign-in page says so.
    token = csrf_token((await amina.get("/agent")).text)
    await idle_out(app, amina)
    sent = await amina.post("/agent/callers", data={"cnic": "35202-1234567-2", "csrf_token": token})
    assert parse_qs(urlsplit(sent.headers["location"]).query) == {
        "next": ["/agent"],
        "unsaved": ["1"],
    }
    redis = app.state.runtime.redis
    assert [k async for k in redis.scan_iter("rabta:agent:session:*:unsent")] == []
    assert await audit_entries(registry, action="lookup") == []


async def test_a_grievance_for_the_caller_waits_until_her_record_is_open_again(
    new_client, staff, registry, app
):
    """The record closes with the session it was opened in: the complaint being written comes
    back once the record is open again, through as many pages as that takes."""
    sadia = await new_client("sadia")
    lookup = await verified(sadia, registry)
    token = csrf_token((await sadia.get(lookup)).text)
    await idle_out(app, sadia)
    description = "Campsite at Ichhra was shut on the collection day; the agent said come later."
    sent = await sadia.post(
        f"{lookup}/grievances",
        data={
            "category": "deduction_by_agent",
            "description": description,
            "language": "pa_Arab",
            "csrf_token": token,
        },
    )
    _, answer = await sign_in_again(sadia, sent, "sadia")
    assert answer.headers["location"] == lookup
    for _ in range(3):  # the page reloaded, the record still closed: still kept
        waiting = (await sadia.get(lookup)).text
        assert "Verify the caller again" in waiting and "Campsite at Ichhra" in waiting
        assert 'id="description"' not in waiting
        assert "flash-kept" not in waiting  # words kept for a form say nothing themselves
    # A wrong code on the way changes nothing of it.
    await sadia.post(f"{lookup}/verify", data={"code": "000000", "csrf_token": csrf_token(waiting)})
    waiting = (await sadia.get(lookup)).text
    assert "Campsite at Ichhra" in waiting
    await sadia.post(
        f"{lookup}/override",
        data={"reason": "Caller's phone was stolen today", "csrf_token": csrf_token(waiting)},
    )
    opened = (await sadia.get(lookup)).text
    assert "Override recorded" in opened
    assert textarea(opened, "description") == description
    assert selected(opened, "category") == "deduction_by_agent"
    assert selected(opened, "language") == "pa_Arab"
    assert "Verify the caller again" not in opened
    assert textarea((await sadia.get(lookup)).text, "description") == ""
    assert await audit_entries(registry, action="file_grievance") == []


async def test_an_override_reason_comes_back_too(new_client, staff, registry, app):
    await set_mobile(registry, ELIGIBLE_WIFE, None)
    bilal = await new_client("bilal")
    lookup = await open_lookup(bilal)
    token = csrf_token((await bilal.get(lookup)).text)
    await idle_out(app, bilal)
    sent = await bilal.post(
        f"{lookup}/override-request",
        data={"reason": "Caller lost her phone in the flood", "csrf_token": token},
    )
    await sign_in_again(bilal, sent, "bilal")
    page = (await bilal.get(lookup)).text
    assert textarea(page, "request-reason") == "Caller lost her phone in the flood"
    assert await audit_entries(registry, action="override_request") == []


async def test_someone_else_signing_in_at_that_browser_never_sees_it(
    new_client, staff, registry, settings, app
):
    ticket = await file(registry, settings)
    page = f"/agent/grievances/{ticket}"
    amina = await new_client("amina")
    token = csrf_token((await amina.get(page)).text)
    await idle_out(app, amina)
    sent = await amina.post(f"{page}/notes", data={"note": NOTE, "csrf_token": token})
    # Bilal sits down at her computer and signs in: her words are not his to see, and are gone.
    _, answer = await sign_in_again(amina, sent, "bilal")
    assert answer.headers["location"] == page
    shown = (await amina.get(page)).text
    assert NOTE not in unescape(shown) and "is back in its form" not in shown
    redis = app.state.runtime.redis
    assert [k async for k in redis.scan_iter("rabta:agent:session:*:unsent")] == []


async def test_only_the_consoles_own_form_of_that_session_is_kept(
    new_client, staff, registry, settings, app
):
    """A post that could not have come from the session's own page (a wrong token, another
    site, a session signed out or never made) keeps nothing, and says only that nothing was
    sent."""
    ticket = await file(registry, settings)
    page = f"/agent/grievances/{ticket}"
    redis = app.state.runtime.redis
    amina = await new_client("amina")
    token = csrf_token((await amina.get(page)).text)
    await idle_out(app, amina)
    attempts = [
        ({"note": NOTE, "csrf_token": "0" * len(token)}, {}),
        ({"note": NOTE, "csrf_token": "ٹوکن"}, {}),
        ({"note": NOTE}, {}),
        ({"note": NOTE, "csrf_token": token}, {"Origin": "https://evil.example"}),
    ]
    for data, headers in attempts:
        sent = await amina.post(f"{page}/notes", data=data, headers=headers)
        assert sent.status_code == 303
        assert parse_qs(urlsplit(sent.headers["location"]).query)["unsaved"] == ["1"]
        assert [k async for k in redis.scan_iter("rabta:agent:session:*:unsent")] == []
    # A cookie naming no session that ever was.
    stranger = await new_client()
    stranger.cookies.set("rabta_agent", "made-up-session-id", domain="127.0.0.1")
    sent = await stranger.post(f"{page}/notes", data={"note": NOTE, "csrf_token": token})
    assert parse_qs(urlsplit(sent.headers["location"]).query)["unsaved"] == ["1"]
    # A session its agent signed out of: signing out keeps nothing of it.
    sadia = await new_client("sadia")
    shown = (await sadia.get(page)).text
    cookie = sadia.cookies["rabta_agent"]
    await sadia.post("/agent/logout", data={"csrf_token": csrf_token(shown)})
    sadia.cookies.set("rabta_agent", cookie, domain="127.0.0.1")
    sent = await sadia.post(f"{page}/notes", data={"note": NOTE, "csrf_token": csrf_token(shown)})
    assert parse_qs(urlsplit(sent.headers["location"]).query)["unsaved"] == ["1"]
    assert [k async for k in redis.scan_iter("rabta:agent:session:*:unsent")] == []
    # A code the caller read back is never kept, whatever the session.
    lookup = await open_lookup(sadia := await new_client("sadia"))
    token = csrf_token((await sadia.get(lookup)).text)
    await idle_out(app, sadia)
    sent = await sadia.post(f"{lookup}/verify", data={"code": "123456", "csrf_token": token})
    assert parse_qs(urlsplit(sent.headers["location"]).query) == {
        "next": [lookup],
        "unsaved": ["1"],
    }
    assert [k async for k in redis.scan_iter("rabta:agent:session:*:unsent")] == []


async def test_redis_holds_the_text_no_longer_than_a_session_would(
    new_client, staff, registry, settings, app
):
    from api.agent.sessions import IDLE_SECONDS

    ticket = await file(registry, settings)
    page = f"/agent/grievances/{ticket}"
    amina = await new_client("amina")
    token = csrf_token((await amina.get(page)).text)
    await idle_out(app, amina)
    await amina.post(f"{page}/notes", data={"note": NOTE, "csrf_token": token})
    redis = app.state.runtime.redis
    [key] = [k async for k in redis.scan_iter("rabta:agent:session:*:unsent")]
    assert 0 < await redis.ttl(key) <= IDLE_SECONDS
    # Its name is the session id's hash, as the session's was: no id, no CNIC, no text.
    assert amina.cookies["rabta_agent"] not in key and "Ichhra" not in key
