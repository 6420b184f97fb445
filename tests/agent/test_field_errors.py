"""A refused form says what is wrong *at the field*: the field is marked invalid and described
by the message (aria-invalid, aria-describedby), so a screen reader reaching it reads why, as
the sign-in form's error already did; its own hint stays in the description."""

from __future__ import annotations

import re
from html import unescape

import pytest

from tests.agent.conftest import post_form
from tests.agent.test_callers import open_lookup, verified
from tests.agent.test_grievances import file
from tests.agent.test_kept_words import LONG_NOTE


def field_error(html: str, field_id: str) -> str:
    """The text of what describes the field `field_id` as invalid ("" when it is not marked)."""
    tag = re.search(rf'<(?:input|textarea|select) id="{re.escape(field_id)}"[^>]*>', html)
    assert tag, f"no field {field_id}"
    if 'aria-invalid="true"' not in tag[0]:
        return ""
    described = re.search(r'aria-describedby="([^"]+)"', tag[0])
    assert described, f"{field_id} is marked invalid but described by nothing"
    texts = []
    for ref in described[1].split():
        found = re.search(rf'<[a-z]+ [^>]*id="{re.escape(ref)}"[^>]*>([^<]*)<', html)
        assert found, f"{field_id} is described by {ref}, which is not on the page"
        texts.append(unescape(found[1]))
    return " ".join(texts)


async def test_a_cnic_that_is_not_one_is_said_at_the_cnic_field(new_client, staff):
    amina = await new_client("amina")
    await post_form(amina, "/agent", "/agent/callers", {"cnic": "12345"})
    page = (await amina.get("/agent")).text
    said = field_error(page, "cnic")
    assert "That is not a CNIC" in said
    assert "13 digits, with or without dashes." in said  # the hint is still read
    assert field_error((await amina.get("/agent")).text, "cnic") == ""  # said once


async def test_a_wrong_code_is_said_at_the_code_field(new_client, staff, registry):
    amina = await new_client("amina")
    lookup = await open_lookup(amina)
    await post_form(amina, lookup, f"{lookup}/code", {})
    await post_form(amina, lookup, f"{lookup}/verify", {"code": "000000"})
    assert "Wrong code." in field_error((await amina.get(lookup)).text, "code")


@pytest.mark.parametrize(
    ("user", "field"), [("bilal", "request-reason"), ("sadia", "override-reason")]
)
async def test_a_reason_too_short_is_said_at_the_reason_field(new_client, staff, user, field):
    client = await new_client(user)
    lookup = await open_lookup(client)
    action = "override" if field == "override-reason" else "override-request"
    await post_form(client, lookup, f"{lookup}/{action}", {"reason": "lost"})
    assert "Write the reason" in field_error((await client.get(lookup)).text, field)


async def test_a_grievance_for_the_caller_says_which_field_is_missing(new_client, staff, registry):
    amina = await new_client("amina")
    lookup = await verified(amina, registry)
    await post_form(amina, lookup, f"{lookup}/grievances", {"description": "Rs 500 kept"})
    page = (await amina.get(lookup)).text
    assert "Choose the kind of grievance." in field_error(page, "category")
    assert field_error(page, "description") == ""
    await post_form(amina, lookup, f"{lookup}/grievances", {"category": "other"})
    page = (await amina.get(lookup)).text
    assert "Describe the grievance" in field_error(page, "description")
    assert field_error(page, "category") == ""


async def test_a_refused_note_or_escalation_is_said_at_its_box(
    new_client, staff, registry, settings
):
    ticket = await file(registry, settings)
    page = f"/agent/grievances/{ticket}"
    amina = await new_client("amina")
    await post_form(amina, page, f"{page}/notes", {"note": LONG_NOTE})
    shown = (await amina.get(page)).text
    assert "Shorten it" in field_error(shown, "caller-note")
    assert "Sent by SMS" in field_error(shown, "caller-note")  # the hint is still read
    assert field_error(shown, "note") == ""
    await post_form(amina, page, f"{page}/notes", {"note": " ", "internal": "1"})
    assert "Write the note" in field_error((await amina.get(page)).text, "note")
    await post_form(amina, page, f"{page}/status", {"to": "escalated", "note": " "})
    shown = (await amina.get(page)).text
    assert "Say why the grievance is escalated." in field_error(shown, "escalate-note")
    sadia = await new_client("sadia")
    await post_form(sadia, page, f"{page}/status", {"to": "resolved", "note": LONG_NOTE})
    assert "Shorten it" in field_error((await sadia.get(page)).text, "status-note")
    await post_form(sadia, page, f"{page}/assign", {"agent_id": "x"})
    shown = (await sadia.get(page)).text
    assert "cannot take grievances" in field_error(shown, "agent_id")
