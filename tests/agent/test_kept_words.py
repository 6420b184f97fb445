"""A refused form's words come back in that form, on its own page, whatever pages are shown in
between: an error page (a 404, a 403, a CSRF refusal, a 422), another grievance's page with
boxes of the same names, or the queue in another tab."""

from __future__ import annotations

from tests.agent.conftest import csrf_token, post_form
from tests.agent.test_callers import verified
from tests.agent.test_grievances import file, form_seen, textarea
from tests.agent.test_unsent import selected

#: A note for the caller longer than her SMS carries (80 characters): refused, to be shortened.
LONG_NOTE = (
    "Your payment is at the Ichhra campsite from Monday; bring your CNIC and the token slip "
    "you were given."
)


async def pages_in_between(client, other_page: str) -> None:
    """What an agent may open before the page a refusal leads back to: error pages of every
    kind, shown to her signed in, and another grievance's page."""
    assert (await client.get("/agent/grievances/G-0000000")).status_code == 404
    assert (await client.get("/agent/callers/no-such-call")).status_code == 404
    assert (await client.get("/agent/dashboard")).status_code == 403
    assert (await client.post(f"{other_page}/notes", data={"note": "x"})).status_code == 403
    token = csrf_token((await client.get(other_page)).text)
    bad_status = {"to": "no-such-status", "csrf_token": token}
    assert (await client.post(f"{other_page}/status", data=bad_status)).status_code == 422
    assert (await client.get("/agent/grievances")).status_code == 200


async def test_a_refused_note_waits_for_its_own_grievances_page(
    new_client, staff, registry, settings
):
    ticket, other = await file(registry, settings), await file(registry, settings)
    page, other_page = f"/agent/grievances/{ticket}", f"/agent/grievances/{other}"
    amina = await new_client("amina")
    refused = await post_form(amina, page, f"{page}/notes", {"note": LONG_NOTE})
    assert refused.headers["location"] == page
    await pages_in_between(amina, other_page)
    # Another grievance's page has a box of the same name: the words are not put in it.
    elsewhere = (await amina.get(other_page)).text
    assert textarea(elsewhere, "caller-note") == "" and "Shorten it" not in elsewhere
    # Its own page gives them back, with why they were refused, once.
    shown = (await amina.get(page)).text
    assert "Shorten it" in shown and textarea(shown, "caller-note") == LONG_NOTE
    again = (await amina.get(page)).text
    assert textarea(again, "caller-note") == "" and "Shorten it" not in again


async def test_a_refused_grievance_for_the_caller_waits_for_the_callers_page(
    new_client, staff, registry
):
    sadia = await new_client("sadia")
    lookup = await verified(sadia, registry)
    description = "The retailer at Ichhra kept Rs 500 of the tranche and gave no receipt."
    refused = await post_form(
        sadia,
        lookup,
        f"{lookup}/grievances",
        {"category": "", "description": description, "language": "sd"},
    )
    assert refused.headers["location"] == lookup
    assert (await sadia.get("/agent/grievances/G-0000000")).status_code == 404
    assert (await sadia.get("/agent/audit")).status_code == 403
    assert (await sadia.get("/agent/dashboard")).status_code == 200
    shown = (await sadia.get(lookup)).text
    assert "Choose the kind of grievance." in shown
    assert textarea(shown, "description") == description
    assert selected(shown, "language") == "sd"


async def test_two_forms_refused_on_two_pages_each_come_back_on_their_own(
    new_client, staff, registry, settings
):
    """Two tabs: a note refused on one grievance, an escalation refused on another; each page
    gives back its own form's words, whichever is opened first."""
    first, second = await file(registry, settings), await file(registry, settings)
    one, two = f"/agent/grievances/{first}", f"/agent/grievances/{second}"
    amina, sadia = await new_client("amina"), await new_client("sadia")
    stale = form_seen((await amina.get(two)).text, f"{two}/status")
    # A supervisor moves the second grievance on while Amina writes why to escalate it.
    await post_form(sadia, two, f"{two}/status", {"to": "in_progress"})
    await post_form(amina, one, f"{one}/notes", {"note": LONG_NOTE})
    reason = "The campsite turned her away twice; she has no other way to collect."
    overtaken = await amina.post(f"{two}/status", data={**stale, "note": reason})
    assert overtaken.headers["location"] == two
    shown_two = (await amina.get(two)).text
    assert textarea(shown_two, "escalate-note") == reason
    assert textarea(shown_two, "caller-note") == ""
    shown_one = (await amina.get(one)).text
    assert textarea(shown_one, "caller-note") == LONG_NOTE
    assert textarea(shown_one, "escalate-note") == ""
