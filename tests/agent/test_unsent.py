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


async def test_the_words_wait_for_their_form_through_error_pages_after_signing_in(
    new_client, staff, registry, settings, app
):
    """Signing in leads back to the form's page, but the agent may open others first (another
    tab reloads, a link to a grievance that is no more): the words wait for their own page."""
    ticket, other = await file(registry, settings), await file(registry, settings)
    page, other_page = f"/agent/grievances/{ticket}", f"/agent/grievances/{other}"
    amina = await new_client("amina")
    token = csrf_token((await amina.get(page)).text)
    await idle_out(app, amina)
    sent = await amina.post(f"{page}/notes", data={"note": NOTE, "csrf_token": token})
    await sign_in_again(amina, sent, "amina")
    assert (await amina.get("/agent/grievances/G-0000000")).status_code == 404
    assert (await amina.get("/agent/dashboard")).status_code == 403
    assert (await amina.post(f"{other_page}/notes", data={"note": "x"})).status_code == 403
    elsewhere = (await amina.get(other_page)).text
    assert textarea(elsewhere, "caller-note") == "" and "is back in its form" not in elsewhere
    back = (await amina.get(page)).text
    assert textarea(back, "caller-note") == NOTE and "is back in its form" in back


async def test_a_grievance_waiting_for_the_record_outlasts_other_pages(
    new_client, staff, registry, app
):
    sadia = await new_client("sadia")
    lookup = await verified(sadia, registry)
    token = csrf_token((await sadia.get(lookup)).text)
    await idle_out(app, sadia)
    description = "Campsite at Ichhra was shut on the collection day; the agent said come later."
    sent = await sadia.post(
        f"{lookup}/grievances",
        data={"category": "other", "description": description, "csrf_token": token},
    )
    await sign_in_again(sadia, sent, "sadia")
    # The queue, a 404, the dashboard: none of them takes the complaint being written.
    assert (await sadia.get("/agent/grievances")).status_code == 200
    assert (await sadia.get("/agent/grievances/G-0000000")).status_code == 404
    assert (await sadia.get("/agent/dashboard")).status_code == 200
    waiting = (await sadia.get(lookup)).text
    assert "Campsite at Ichhra" in waiting
    await sadia.post(
        f"{lookup}/override",
        data={"reason": "Caller's phone was stolen today", "csrf_token": csrf_token(waiting)},
    )
    opened = (await sadia.get(lookup)).text
    assert textarea(opened, "description") == description
    assert selected(opened, "category") == "other"


async def test_two_tabs_sent_after_the_session_ended_each_get_their_words_back(
    new_client, staff, registry, settings, app
):
    """One browser, two tabs, both forms sent after the session ended: a note on one grievance,
    an escalation on another, and a second note in the same box of the first. Nothing of any of
    them is lost, whichever tab she signs in from, and however many times."""
    first, second = await file(registry, settings), await file(registry, settings)
    one, two = f"/agent/grievances/{first}", f"/agent/grievances/{second}"
    amina = await new_client("amina")
    token = csrf_token((await amina.get(one)).text)
    await idle_out(app, amina)
    reason = "The campsite turned her away twice; she has no other way to collect."
    later = "Your case is with a supervisor now; expect a call this week."
    sent_one = await amina.post(f"{one}/notes", data={"note": NOTE, "csrf_token": token})
    sent_two = await amina.post(
        f"{two}/status", data={"to": "escalated", "note": reason, "csrf_token": token}
    )
    sent_again = await amina.post(f"{one}/notes", data={"note": later, "csrf_token": token})
    for sent in (sent_one, sent_two, sent_again):
        assert parse_qs(urlsplit(sent.headers["location"]).query)["unsaved"] == ["kept"]
    # She signs in from the second tab: it leads back to the escalation, its reason in its box.
    _, answer = await sign_in_again(amina, sent_two, "amina")
    assert answer.headers["location"] == two
    assert textarea((await amina.get(two)).text, "escalate-note") == reason
    # The first tab's sign-in page, sent too (a session ends and another starts): its words are
    # still there, the last written first, then the one before it once that one is sent.
    _, answer = await sign_in_again(amina, sent_one, "amina")
    assert answer.headers["location"] == one
    back = (await amina.get(one)).text
    assert textarea(back, "caller-note") == later and "is back in its form" in back
    await amina.post(f"{one}/notes", data={"note": later, "csrf_token": csrf_token(back)})
    back = (await amina.get(one)).text
    assert textarea(back, "caller-note") == NOTE
    assert textarea((await amina.get(one)).text, "caller-note") == ""
    assert [e.note for e in await events(registry, first)][1:] == [later]
    assert [k async for k in app.state.runtime.redis.scan_iter("*:sealed:unsent")] == []


async def test_the_forms_kept_are_bounded_and_the_newest_stay(
    new_client, staff, registry, settings, app
):
    from api.agent.sessions import MAX_UNSENT

    ticket = await file(registry, settings)
    page = f"/agent/grievances/{ticket}"
    amina = await new_client("amina")
    token = csrf_token((await amina.get(page)).text)
    await idle_out(app, amina)
    notes = [f"Note number {n} for the campsite" for n in range(MAX_UNSENT + 3)]
    for note in notes:
        sent = await amina.post(
            f"{page}/notes", data={"note": note, "internal": "1", "csrf_token": token}
        )
    await sign_in_again(amina, sent, "amina")
    given = [textarea((await amina.get(page)).text, "note") for _ in range(MAX_UNSENT + 1)]
    assert given == [*reversed(notes[-MAX_UNSENT:]), ""]


async def test_each_form_is_given_back_within_its_own_hour(
    new_client, staff, registry, settings, app, monkeypatch
):
    """A second form kept later does not stretch the first one's hour: the first written past
    it is not given back, the later one is."""
    import time
    import types

    from api.agent import sessions

    clock = [time.time()]
    monkeypatch.setattr(sessions, "time", types.SimpleNamespace(time=lambda: clock[0]))
    first, second = await file(registry, settings), await file(registry, settings)
    one, two = f"/agent/grievances/{first}", f"/agent/grievances/{second}"
    amina = await new_client("amina")
    token = csrf_token((await amina.get(one)).text)
    await idle_out(app, amina)
    await amina.post(f"{one}/notes", data={"note": NOTE, "csrf_token": token})
    clock[0] += sessions.IDLE_SECONDS - 600
    later = "Your case is with a supervisor now; expect a call this week."
    sent = await amina.post(f"{two}/notes", data={"note": later, "csrf_token": token})
    clock[0] += 1200
    _, answer = await sign_in_again(amina, sent, "amina")
    assert answer.headers["location"] == two
    assert textarea((await amina.get(two)).text, "caller-note") == later
    assert textarea((await amina.get(one)).text, "caller-note") == ""
    # A refused form's words wait for their page an hour at most too.
    longer = NOTE + " Call 8171 if it is closed."
    token = csrf_token((await amina.get("/agent")).text)
    await amina.post(f"{one}/notes", data={"note": longer, "csrf_token": token})
    clock[0] += sessions.IDLE_SECONDS - 60
    await amina.post(f"{two}/notes", data={"note": longer, "csrf_token": token})
    clock[0] += 120
    assert textarea((await amina.get(one)).text, "caller-note") == ""
    assert textarea((await amina.get(two)).text, "caller-note") == longer
