"""A verification code whose SMS was lost with its message's transaction: the database went away
at the commit (a restart, a failover) after Redis had stored the code and bound it to the
sender. The sender asking again must get a code, not "we sent a code" for one that never left.
"""

from __future__ import annotations

from tests.api.test_sms_payments import HELPER_PHONE, Chat, delivered_code
from tests.conftest import ELIGIBLE_PHONE, ELIGIBLE_WIFE, codes_sent, commit_trigger

#: A deferred constraint trigger runs at COMMIT: this one ends its own connection there, for
#: the first code SMS queued, as a database restarting under that commit does (a sequence, not
#: a table, counts: it is not rolled back with the transaction).
LOSE_THE_FIRST_CODE = (
    "CREATE SEQUENCE rabta_test_codes",
    """CREATE OR REPLACE FUNCTION rabta_test_lose_code() RETURNS trigger AS $$
    BEGIN
        IF NEW.kind = 'otp' AND nextval('rabta_test_codes') = 1 THEN
            PERFORM pg_terminate_backend(pg_backend_pid());
        END IF;
        RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    """CREATE CONSTRAINT TRIGGER rabta_test_lose_code AFTER INSERT ON outbound_messages
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION rabta_test_lose_code()""",
)
CLEAN_UP = (
    "DROP TRIGGER IF EXISTS rabta_test_lose_code ON outbound_messages",
    "DROP FUNCTION IF EXISTS rabta_test_lose_code()",
    "DROP SEQUENCE IF EXISTS rabta_test_codes",
)


async def test_a_code_lost_with_its_commit_is_sent_when_asked_again(
    client, app, settings, registry, db
):
    helper = Chat(client, HELPER_PHONE)
    await helper.send("LANG EN")
    async with commit_trigger(db, LOSE_THE_FIRST_CODE, CLEAN_UP):
        lost = await helper.send(f"PAY {ELIGIBLE_WIFE}")
        assert "we sent" not in lost  # held: no answer yet (the database is "away")
        assert await codes_sent(db) == 0
        again = await helper.send(f"PAY {ELIGIBLE_WIFE}")
    assert "we sent a 6-digit code" in again
    assert await codes_sent(db) == 1
    code = await delivered_code(app, settings, ELIGIBLE_PHONE)
    assert "Rs 13,500" in await helper.send(code)
