"""What the inbound log's USSD ids tell whoever reads the database (a dump, a backup, a read
replica): nothing of what was typed.

The inbound log keeps no message text on purpose (`inbound_messages` has no body column). A USSD
hit has no provider message id, so its dedup id is made from the session, the phone and the whole
`text`, which holds every CNIC typed in the session (`2*3520212345672`). The phone of each caller
is in `contacts` anyway, and a CNIC is a district prefix, seven digits and a gender digit: an
unkeyed hash of the two is undone by trying them all, in seconds on one GPU. The id must be a
keyed hash (RABTA_SECRET_KEY), as the Redis keys standing for phones and CNICs are.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from api.registry.models import Contact, InboundMessage
from tests.conftest import ELIGIBLE_PHONE, ELIGIBLE_WIFE, NOT_ELIGIBLE, NOT_FOUND
from tests.ussd.conftest import URL, screen_of, ussd_form

HELPER_PHONE = "+923219876543"


def _plain_hash(phone: str, text: str) -> str:
    """What anyone can compute without the secret: SHA-256 of the phone and the text, as a
    dedup id of 16 hex digits."""
    return hashlib.sha256(f"{phone}\n{text}".encode()).hexdigest()[:16]


async def test_the_cnic_typed_on_ussd_cannot_be_recovered_from_the_inbound_log(
    client, registry, db
):
    session = "ATUid_privacy_ids"
    for text in ("", "1", f"1*{ELIGIBLE_WIFE}"):
        screen_of(await client.post(URL, data=ussd_form(session, HELPER_PHONE, text)))
    async with db.sessions() as s:
        ids = (
            await s.scalars(
                select(InboundMessage.external_id).where(InboundMessage.channel == "ussd")
            )
        ).all()
        phones = (await s.scalars(select(Contact.address).where(Contact.channel == "ussd"))).all()
    assert len(ids) == 3 and phones == [HELPER_PHONE]
    digests = {i.rsplit(":", 1)[-1] for i in ids}
    # An attacker with the database tries every phone it holds and every candidate path (here
    # a few CNICs; in truth all of them): none of the stored ids may be matched.
    candidates = ["", "1"] + [f"1*{c}" for c in (NOT_FOUND, NOT_ELIGIBLE, ELIGIBLE_WIFE)]
    matched = [t for p in phones for t in candidates if _plain_hash(p, t) in digests]
    assert matched == [], f"recovered from the inbound log: {matched}"


async def test_a_replayed_hit_is_still_recognised(client, registry, db):
    """The keyed id is stable: the gateway's retry of a hit is answered from the log, and the
    same path from another phone is not (a forged hit gets no one's stored screen)."""
    session = "ATUid_privacy_replay"
    for text in ("", "1"):
        screen_of(await client.post(URL, data=ussd_form(session, ELIGIBLE_PHONE, text)))
    first = screen_of(
        await client.post(URL, data=ussd_form(session, ELIGIBLE_PHONE, f"1*{ELIGIBLE_WIFE}"))
    )
    again = screen_of(
        await client.post(URL, data=ussd_form(session, ELIGIBLE_PHONE, f"1*{ELIGIBLE_WIFE}"))
    )
    assert again == first and "35202-" in first
    forged = screen_of(
        await client.post(URL, data=ussd_form(session, HELPER_PHONE, f"1*{ELIGIBLE_WIFE}"))
    )
    assert forged != first
    async with db.sessions() as s:
        ids = (
            await s.scalars(
                select(InboundMessage.external_id).where(InboundMessage.channel == "ussd")
            )
        ).all()
    assert len(ids) == len(set(ids)) == 4  # three hits of the phone, one forged; the retry none
