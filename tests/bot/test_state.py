"""Conversations in Redis: what is stored, and that a blank one is not stored at all."""

from __future__ import annotations

import dataclasses

import pytest

from bot.dialogue.state import Conversation, ConversationStore, Step

SECRET = "state-test-secret-0123456789"
#: A value other than the default for every field the store keeps.
NOT_BLANK = {
    "language": "ur",
    "guessed_language": "sd",
    "step": Step.GRIEVANCE_CATEGORY,
    "options": ["HELP"],
    "data": {"category": "payment"},
    "verified_cnic": "3520212345671",
    "verified_until": 1.0,
    "opted_out": True,
}


def test_every_stored_field_set_makes_a_conversation_not_blank():
    kept = {f.name for f in dataclasses.fields(Conversation)} - {
        "channel",
        "address",
        "phone",
        "stored",
    }
    assert kept == set(NOT_BLANK)  # a field added to Conversation needs a line here
    assert Conversation("sms", "+923001234567").blank
    for name, value in NOT_BLANK.items():
        conversation = Conversation("sms", "+923001234567", **{name: value})
        assert not conversation.blank, name
    # A phone proven by a contact card lives on the contact, not in Redis.
    assert Conversation("telegram", "42", phone="+923001234567").blank


@pytest.mark.parametrize("field", sorted(NOT_BLANK))
async def test_a_stored_conversation_comes_back_as_it_was(redis, field):
    store = ConversationStore(redis, secret=SECRET)
    conversation = Conversation("sms", "+923001234567", **{field: NOT_BLANK[field]})
    assert await store.save(conversation)
    loaded = await store.load("sms", "+923001234567")
    assert loaded == conversation and loaded.stored


async def test_a_blank_conversation_is_not_stored_and_one_that_was_is_deleted(redis):
    store = ConversationStore(redis, secret=SECRET)
    key = store.key("sms", "+923001234567")
    fresh = await store.load("sms", "+923001234567")
    assert fresh.blank and not fresh.stored
    assert not await store.save(fresh)  # nothing sent
    assert await redis.exists(key) == 0

    fresh.step, fresh.data = Step.GRIEVANCE_CATEGORY, {"cnic": "3520212345671"}
    assert await store.save(fresh)
    assert await redis.ttl(key) > 0
    mid_flow = await store.load("sms", "+923001234567")
    assert mid_flow.step is Step.GRIEVANCE_CATEGORY

    mid_flow.reset()  # the flow ended: nothing left to remember, the CNIC included
    assert await store.save(mid_flow)
    assert await redis.exists(key) == 0
    assert (await store.load("sms", "+923001234567")).blank


def test_a_conversation_from_another_release_reads_without_what_it_does_not_know(redis):
    """A rolling deploy: a newer release's field is left out, the conversation goes on; one
    that cannot be read at all (a step this release does not have, not an object, not sealed
    for its key) is taken as expired: blank, and deleted by saving it so."""
    import json

    from api.sealed import sealer_for

    store = ConversationStore(redis, secret=SECRET)
    key = store.key("sms", "+923001234567")

    def sealed(payload: object) -> str:
        return sealer_for(SECRET).seal(json.dumps(payload), where=key)

    stored = sealed({"language": "ur", "step": "idle", "from_a_newer_release": 1})
    conversation = store.parse("sms", "+923001234567", stored)
    assert conversation is not None and conversation.language == "ur" and conversation.stored
    # What the store leaves out is never taken from Redis either.
    sneaky = sealed({"step": "idle", "phone": "+923001234567", "address": "someone"})
    conversation = store.parse("sms", "+923001234567", sneaky)
    assert conversation is not None and conversation.phone is None
    assert conversation.address == "+923001234567"
    assert store.parse("sms", "+923001234567", None) is None  # nothing stored
    unreadable = [
        sealed({"step": "renamed"}),
        sealed([1, 2]),
        sealer_for(SECRET).seal("x", where=key),
    ]
    # ...and what does not open: in clear (the release before sealing), altered, sealed for
    # another conversation's key, or under another secret key.
    good = sealed({"step": "idle", "language": "ur"})
    at = len(good) // 2
    altered = good[:at] + ("A" if good[at] != "A" else "B") + good[at + 1 :]
    unreadable += ['{"step": "idle", "language": "ur"}', altered]
    unreadable.append(sealer_for(SECRET).seal('{"language": "ur"}', where=key + "0"))
    unreadable.append(sealer_for("another-secret-0123456789").seal('{"language": "ur"}', where=key))
    for raw in unreadable:
        conversation = store.parse("sms", "+923001234567", raw)
        assert conversation is not None and conversation.blank and conversation.stored, raw


async def test_a_conversation_that_does_not_open_is_deleted_when_saved_blank(redis):
    store = ConversationStore(redis, secret=SECRET)
    key = store.key("sms", "+923001234567")
    await redis.set(key, '{"step": "grievance_category", "data": {"cnic": "3520212345671"}}')
    conversation = await store.load("sms", "+923001234567")
    assert conversation.blank  # the release before sealing wrote it: taken as expired
    assert await store.save(conversation)
    assert await redis.exists(key) == 0
