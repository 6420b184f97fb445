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


def test_a_conversation_from_another_release_reads_without_what_it_does_not_know():
    """A rolling deploy: a newer release's field is left out, the conversation goes on; one
    that cannot be read at all (a step this release does not have, not an object) is none."""
    import json

    stored = json.dumps({"language": "ur", "step": "idle", "from_a_newer_release": 1})
    conversation = ConversationStore.parse("sms", "+923001234567", stored)
    assert conversation is not None and conversation.language == "ur" and conversation.stored
    # What the store leaves out is never taken from Redis either.
    sneaky = json.dumps({"step": "idle", "phone": "+923001234567", "address": "someone"})
    conversation = ConversationStore.parse("sms", "+923001234567", sneaky)
    assert conversation is not None and conversation.phone is None
    assert conversation.address == "+923001234567"
    for unreadable in ('{"step": "renamed"}', "[1, 2]", "not json"):
        assert ConversationStore.parse("sms", "+923001234567", unreadable) is None
