"""Every statement Rabta runs for a message, a console page, the outbox and held-message workers,
grievance notifications and operator commands, under `EXPLAIN (ANALYZE, BUFFERS)` on the bench's
database with realistic parameters: time, buffers read, and each plan's nodes (a sequential scan
is flagged). Fill Rabta's own tables first (bench/own_tables.sql), then:

    .venv/bin/python bench/plans.py [results.json] [name-regex]

Data-changing statements run in a transaction that is rolled back. Each runs three times; the
fastest is shown. The literals are rows of the bench's seed (--seed 7) and of own_tables.sql.
A page's cursor (the console's lists page by where the previous page ended) is written
$DUE(id), the due date and id of that grievance, or $AT(id), the time and id of that audit
entry: own_tables.sql dates them from when it ran, so they are read before the statements run.
The deep pages' cursors lie about 5,000 rows into their list (the open tab holds 15,000
grievances, the Closed tab 85,000, the audit log a million entries).
"""

# ruff: noqa: S608, E501 - a bench: our own SQL, kept on one line each for reading

from __future__ import annotations

import asyncio
import json
import re
import sys

import asyncpg

DSN = "postgresql://postgres@127.0.0.1:5432/rabta_bench"

CNIC = "'1110100010578'"
HH = "'HH-KP-00595908'"
MOBILE = "'+923214306529'"
PHONE = "'+923065957351'"
TICKET = "'GRV00050000'"
GCNIC = "'4620179870554'"
NOW = "now()"
STATEMENTS = {
    # --- a beneficiary's message (hot path) ---
    "hot.claim_inbound": "INSERT INTO inbound_messages (channel, external_id, received_at) VALUES ('sms', 'SMnew1', now()) ON CONFLICT (channel, external_id) DO NOTHING RETURNING inbound_messages.id",
    "hot.earlier_reply": "SELECT id, reply, language FROM inbound_messages WHERE channel='sms' AND external_id='SM' || md5('5000')",
    "hot.finish_inbound": "UPDATE inbound_messages SET contact_id=5, intent='cnic', outcome='eligible', language='ur', reply='x' WHERE id = 999999",
    "hot.contact_upsert_with_household": f"""WITH contact AS (INSERT INTO contacts (channel, address, phone, language, opted_out, created_at, last_inbound_at) VALUES ('sms', {PHONE}, {PHONE}, (SELECT c1.language FROM contacts c1 WHERE c1.phone = {PHONE} AND c1.language IS NOT NULL ORDER BY c1.last_inbound_at DESC NULLS LAST, c1.id DESC LIMIT 1), false, now(), now()) ON CONFLICT (channel, address) DO UPDATE SET last_inbound_at = excluded.last_inbound_at, language = coalesce(contacts.language, excluded.language) RETURNING contacts.id, contacts.phone, contacts.language, contacts.opted_out, contacts.verified_cnic, contacts.verified_until)
SELECT contact.*, household.status, household.pmt_score, household.mobile FROM contact LEFT OUTER JOIN (SELECT households.status, households.pmt_score, persons.mobile FROM households JOIN persons ON households.household_id = persons.household_id WHERE persons.cnic = {CNIC}) AS household ON true""",
    "hot.record_answered": "INSERT INTO inbound_messages (channel, external_id, received_at, contact_id, reply, intent, outcome, language) VALUES ('sms','SMnew2', now(), 5, 'x', 'cnic', 'eligible', 'ur') ON CONFLICT (channel, external_id) DO NOTHING RETURNING inbound_messages.id",
    "hot.household_status": f"SELECT households.status, households.pmt_score, persons.mobile FROM households JOIN persons ON households.household_id = persons.household_id WHERE persons.cnic = {CNIC}",
    "hot.save_contact": "UPDATE contacts SET language='ur' WHERE id = 12345",
    "hot.language_for_phone": f"SELECT language FROM contacts WHERE phone = {PHONE} AND language IS NOT NULL ORDER BY last_inbound_at DESC NULLS LAST, id DESC LIMIT 1",
    "hot.sync_language": f"UPDATE contacts SET language='sd' WHERE phone = {PHONE} AND (language IS NULL OR language != 'sd') RETURNING id",
    "hot.sync_opt_out": (
        f"UPDATE contacts SET opted_out=true, opted_out_by='stop' WHERE phone = {PHONE} AND "
        "(opted_out IS NOT true OR opted_out_by IS DISTINCT FROM 'stop') RETURNING id"
    ),
    "hot.persons_by_mobile": f"SELECT * FROM persons WHERE mobile = {MOBILE} ORDER BY cnic",
    "hot.person_and_household": f"SELECT * FROM persons JOIN households ON households.household_id = persons.household_id WHERE persons.cnic = {CNIC}",
    "hot.registered_mobile": f"SELECT mobile FROM persons WHERE cnic = {CNIC}",
    "hot.enrollments": f"SELECT * FROM enrollments WHERE cnic = {CNIC} ORDER BY since",
    "hot.payments": f"SELECT * FROM payments WHERE cnic = {CNIC} ORDER BY window_start DESC, payment_id",
    "hot.grievances_by_cnic": f"SELECT * FROM grievances WHERE cnic = {GCNIC} ORDER BY created_at DESC, id DESC",
    "hot.grievance_events_in": "SELECT * FROM grievance_events WHERE grievance_id IN (50000, 50001) ORDER BY id",
    "hot.grievance_by_ticket": f"SELECT * FROM grievances WHERE ticket_id = {TICKET}",
    "hot.grievance_for_owner": f"SELECT * FROM grievances WHERE ticket_id = {TICKET} AND cnic = {GCNIC}",
    "hot.grievance_by_draft": "SELECT * FROM grievances WHERE draft_key = 'abc'",
    "hot.insert_grievance": f"INSERT INTO grievances (ticket_id, cnic, category, description, status, channel, language, callback_requested, created_at, updated_at, due_at, reopened_count, draft_key) VALUES ('GRVNEW00001', {CNIC}, 'other', 'x', 'open', 'sms', 'ur', false, now(), now(), now() + interval '7 days', 0, 'draftnew') ON CONFLICT DO NOTHING RETURNING id",
    "hot.enqueue_outbound": "INSERT INTO outbound_messages (channel, \"to\", body, kind, language, priority, status, attempts, next_attempt_at, dedup_key, created_at) VALUES ('sms', '+923001234567', 'x', 'reply', 'ur', 1, 'pending', 0, now(), 'telegram-reply:1:0', now()) ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
    "hot.outbound_by_dedup": "SELECT id FROM outbound_messages WHERE dedup_key = 'grievance-event:500002'",
    "hot.contact_language": f"SELECT language FROM contacts WHERE channel='sms' AND address = {PHONE}",
    "hot.hold_message": "INSERT INTO held_messages (channel, external_id, sender, phone, text, received_at, counted, media, attempts) VALUES ('sms','SMheldnew','+923001234567','+923001234567','x',now(),false,false,0) ON CONFLICT (channel, external_id) DO NOTHING RETURNING id",
    # --- outbox worker ---
    "outbox.claim_pick": "SELECT id FROM outbound_messages WHERE (status = 'pending' OR status = 'sending' AND locked_until < now()) AND next_attempt_at <= now() ORDER BY priority, id LIMIT 50 FOR UPDATE SKIP LOCKED",
    "outbox.contacts_of_batch": "SELECT channel, address, opted_out, last_inbound_at FROM contacts WHERE (channel, address) IN (('sms','+923065957351'),('whatsapp','+923000000001'))",
    "outbox.quiet_grievances": "SELECT grievances.id FROM grievances JOIN contacts ON contacts.id = grievances.contact_id WHERE grievances.id IN (50000, 60000) AND contacts.opted_out IS true",
    "outbox.fenced_update": "UPDATE outbound_messages SET status='sent', locked_until=NULL WHERE id = 999001 AND claimed_by='worker-1' AND status='sending'",
    "outbox.status_by_provider_id": "SELECT * FROM outbound_messages WHERE provider_id = 'SMcdca342b084eb5592367809178a98f62' FOR UPDATE",
    "outbox.backlog_metrics": "SELECT channel, count(*), count(CASE WHEN status='pending' AND next_attempt_at <= now() THEN next_attempt_at WHEN status='sending' AND locked_until < now() THEN locked_until END), min(CASE WHEN status='pending' AND next_attempt_at <= now() THEN next_attempt_at WHEN status='sending' AND locked_until < now() THEN locked_until END) FROM outbound_messages WHERE status IN ('pending','sending') GROUP BY channel",
    # --- held-message drainer ---
    "held.claim_pick": "SELECT id FROM held_messages WHERE attempts < 8 AND (claimed_until IS NULL OR claimed_until < now()) ORDER BY id LIMIT 20 FOR UPDATE SKIP LOCKED",
    "held.backlog": "SELECT CASE WHEN attempts >= 8 THEN 'given_up' WHEN attempts > 0 THEN 'retrying' ELSE 'waiting' END, count(*), min(received_at) FROM held_messages GROUP BY 1",
    "held.delete": "DELETE FROM held_messages WHERE id = 1500",
    # --- grievance notifications / escalation ---
    "notify.contact_by_id": "SELECT * FROM contacts WHERE id = 350007",
    "escalation.due": "SELECT * FROM grievances WHERE status IN ('open','in_progress') AND due_at < now() AND escalated_at IS NULL ORDER BY due_at, id LIMIT 100 FOR UPDATE OF grievances SKIP LOCKED",
    # --- the console ---
    "console.home.mine": "SELECT count(*) FROM grievances WHERE status IN ('open','in_progress','escalated') AND assigned_to = 17",
    "console.home.escalated": "SELECT count(*) FROM grievances WHERE status IN ('escalated')",
    "console.home.breached": "SELECT count(*) FROM grievances WHERE status IN ('open','in_progress','escalated') AND due_at < now()",
    "console.queue.count_open": "SELECT count(*) FROM grievances WHERE status IN ('open','in_progress','escalated')",
    "console.queue.count_unassigned": "SELECT count(*) FROM grievances WHERE status IN ('open','in_progress','escalated') AND assigned_to IS NULL",
    "console.queue.count_closed": "SELECT count(*) FROM grievances WHERE status IN ('resolved','rejected')",
    "console.queue.page_open": "SELECT * FROM grievances WHERE status IN ('open','in_progress','escalated') ORDER BY due_at, id LIMIT 51",
    "console.queue.page_open_deep": "SELECT * FROM grievances WHERE status IN ('open','in_progress','escalated') AND (due_at, id) > $DUE(89950) ORDER BY due_at, id LIMIT 51",
    "console.queue.page_open_deep_back": "SELECT * FROM grievances WHERE status IN ('open','in_progress','escalated') AND (due_at, id) < $DUE(89950) ORDER BY due_at DESC, id DESC LIMIT 51",
    "console.queue.page_open_deep_any_before": "SELECT id FROM grievances WHERE status IN ('open','in_progress','escalated') AND (due_at, id) < $DUE(89950) ORDER BY due_at DESC, id DESC LIMIT 1",
    "console.queue.page_breached_deep": "SELECT * FROM grievances WHERE status IN ('open','in_progress','escalated') AND due_at < now() AND (due_at, id) > $DUE(89950) ORDER BY due_at, id LIMIT 51",
    "console.queue.page_mine": "SELECT * FROM grievances WHERE status IN ('open','in_progress','escalated') AND assigned_to = 17 ORDER BY due_at, id LIMIT 51",
    "console.queue.page_mine_after": "SELECT * FROM grievances WHERE status IN ('open','in_progress','escalated') AND assigned_to = 17 AND (due_at, id) > $DUE(91016) ORDER BY due_at, id LIMIT 51",
    "console.queue.page_unassigned_deep": "SELECT * FROM grievances WHERE status IN ('open','in_progress','escalated') AND assigned_to IS NULL AND (due_at, id) > $DUE(92352) ORDER BY due_at, id LIMIT 51",
    "console.queue.page_closed_p1": "SELECT * FROM grievances WHERE status IN ('resolved','rejected') ORDER BY due_at, id LIMIT 51",
    "console.queue.page_closed_deep": "SELECT * FROM grievances WHERE status IN ('resolved','rejected') AND (due_at, id) > $DUE(4950) ORDER BY due_at, id LIMIT 51",
    "console.queue.page_closed_deep_any_before": "SELECT id FROM grievances WHERE status IN ('resolved','rejected') AND (due_at, id) < $DUE(4950) ORDER BY due_at DESC, id DESC LIMIT 1",
    "console.queue.count_open_district": "SELECT count(*) FROM grievances WHERE status IN ('open','in_progress','escalated') AND lower(district) = 'district 17'",
    "console.queue.page_open_district": "SELECT * FROM grievances WHERE status IN ('open','in_progress','escalated') AND lower(district) = 'district 17' ORDER BY due_at, id LIMIT 51",
    "console.queue.page_open_district_after": "SELECT * FROM grievances WHERE status IN ('open','in_progress','escalated') AND lower(district) = 'district 17' AND (due_at, id) > $DUE(92417) ORDER BY due_at, id LIMIT 51",
    "console.queue.page_closed_district": "SELECT * FROM grievances WHERE status IN ('resolved','rejected') AND lower(district) = 'district 17' ORDER BY due_at, id LIMIT 51",
    "console.queue.page_category": "SELECT * FROM grievances WHERE status IN ('open','in_progress','escalated') AND category = 'other' ORDER BY due_at, id LIMIT 51",
    "console.queue.page_category_deep": "SELECT * FROM grievances WHERE status IN ('open','in_progress','escalated') AND category = 'other' AND (due_at, id) > $DUE(99701) ORDER BY due_at, id LIMIT 51",
    "console.grievance_for_update": f"SELECT * FROM grievances WHERE ticket_id = {TICKET} FOR UPDATE OF grievances",
    "console.usernames": "SELECT id, username FROM agents WHERE id IN (1,2,3)",
    "console.agent_by_username": "SELECT * FROM agents WHERE username = 'agent17'",
    "console.note_delivery": "SELECT * FROM outbound_messages WHERE dedup_key = 'grievance-event:500002'",
    "console.household_members": f"SELECT * FROM persons WHERE household_id = {HH} ORDER BY relation != 'head', cnic",
    "console.dashboard.per_day": "SELECT CAST(timezone('Asia/Karachi', received_at) AS DATE) AS day, channel, count(*) FROM inbound_messages WHERE received_at >= now() - interval '14 days' GROUP BY 1, 2 ORDER BY 1",
    "console.dashboard.per_day_cnic": "SELECT CAST(timezone('Asia/Karachi', received_at) AS DATE) AS day, channel, count(*) FROM inbound_messages WHERE received_at >= now() - interval '14 days' AND intent = 'cnic' GROUP BY 1, 2 ORDER BY 1",
    "console.dashboard.by_language": "SELECT language, count(*) FROM inbound_messages WHERE received_at >= now() - interval '14 days' GROUP BY language",
    "console.dashboard.by_intent": "SELECT intent, count(*) FROM inbound_messages WHERE received_at >= now() - interval '14 days' GROUP BY intent",
    "console.dashboard.outcomes": "SELECT outcome, count(*) FROM inbound_messages WHERE received_at >= now() - interval '14 days' AND intent = 'cnic' GROUP BY outcome",
    "console.dashboard.by_category": "SELECT category, count(*) FROM grievances GROUP BY category",
    "console.dashboard.by_status": "SELECT status, count(*) FROM grievances GROUP BY status",
    "console.dashboard.by_district": "SELECT district, count(*) FROM grievances GROUP BY district",
    "console.dashboard.counted_until": "SELECT starts_at, hours FROM inbound_traffic ORDER BY starts_at DESC LIMIT 1",
    "console.dashboard.counted": "SELECT starts_at, channel, language, intent, outcome, sum(messages) FROM inbound_traffic WHERE starts_at >= now() - interval '14 days' GROUP BY 1, 2, 3, 4, 5",
    "console.dashboard.since_counted": "SELECT date_trunc('hour', received_at, 'UTC'), channel, language, intent, outcome, count(*) FROM inbound_messages WHERE received_at >= now() - interval '70 minutes' GROUP BY 1, 2, 3, 4, 5",
    "console.dashboard.worked_by_category": "SELECT category, count(*) FROM grievances WHERE status IN ('open','in_progress','escalated') GROUP BY category",
    "console.dashboard.worked_by_district": "SELECT district, count(*) FROM grievances WHERE status IN ('open','in_progress','escalated') GROUP BY district",
    "console.dashboard.closed_in_period": "SELECT g.status, count(DISTINCT g.id) FROM grievances g JOIN grievance_events e ON e.grievance_id = g.id AND e.to_status = g.status WHERE e.to_status IN ('rejected','resolved') AND e.at >= now() - interval '14 days' GROUP BY g.status",
    "console.dashboard.closed_in_period_180d": "SELECT g.status, count(DISTINCT g.id) FROM grievances g JOIN grievance_events e ON e.grievance_id = g.id AND e.to_status = g.status WHERE e.to_status IN ('rejected','resolved') AND e.at >= now() - interval '180 days' GROUP BY g.status",
    "console.dashboard.roll_up_hour": "SELECT date_trunc('hour', received_at, 'UTC'), channel, language, intent, outcome, count(*) FROM inbound_messages WHERE received_at >= date_trunc('hour', now()) - interval '1 hour' AND received_at < date_trunc('hour', now()) GROUP BY 1, 2, 3, 4, 5",
    "console.queue.count_closed_capped": "SELECT count(*) FROM (SELECT id FROM grievances WHERE status IN ('resolved','rejected') LIMIT 10001) AS capped",
    "console.audit.count_capped": "SELECT count(*) FROM (SELECT id FROM audit_log LIMIT 10001) AS capped",
    "console.dashboard.overdue": "SELECT count(*) FROM grievances WHERE status IN ('open','in_progress','escalated') AND due_at < now()",
    "console.audit.page": "SELECT * FROM audit_log ORDER BY at DESC, id DESC LIMIT 101",
    "console.audit.page_deep": "SELECT * FROM audit_log WHERE (at, id) < $AT(995050) ORDER BY at DESC, id DESC LIMIT 101",
    "console.audit.page_deep_back": "SELECT * FROM audit_log WHERE (at, id) > $AT(995050) ORDER BY at, id LIMIT 101",
    "console.audit.page_deep_any_after": "SELECT id FROM audit_log WHERE (at, id) < $AT(995050) ORDER BY at DESC, id DESC LIMIT 1",
    "console.audit.count": "SELECT count(*) FROM audit_log",
    "console.audit.page_actor": "SELECT * FROM audit_log WHERE actor = 'agent17' ORDER BY at DESC, id DESC LIMIT 101",
    "console.audit.page_actor_deep": "SELECT * FROM audit_log WHERE actor = 'agent17' AND (at, id) < $AT(499816) ORDER BY at DESC, id DESC LIMIT 101",
    "console.audit.count_actor": "SELECT count(*) FROM audit_log WHERE actor = 'agent17'",
    "console.audit.page_action": "SELECT * FROM audit_log WHERE action = 'verify' ORDER BY at DESC, id DESC LIMIT 101",
    "console.audit.page_action_deep": "SELECT * FROM audit_log WHERE action = 'verify' AND (at, id) < $AT(995050) ORDER BY at DESC, id DESC LIMIT 101",
    "console.audit.page_record": "SELECT * FROM audit_log WHERE record_type = 'person' AND record_id = '3520100370037' ORDER BY at DESC, id DESC LIMIT 101",
    "console.audit.count_record": "SELECT count(*) FROM audit_log WHERE record_type = 'person' AND record_id = '3520100370037'",
    "console.audit.page_since": "SELECT * FROM audit_log WHERE at >= now() - interval '1 day' ORDER BY at DESC, id DESC LIMIT 101",
    "console.audit.insert": "INSERT INTO audit_log (at, actor, action, record_type, record_id, reason, client_ip) VALUES (now(), 'agent1', 'lookup', 'person', '1110100010578', NULL, '10.0.0.1') RETURNING id",
    # --- operator commands ---
    "cli.outbox_status": "SELECT m.channel, m.status, count(*), min(m.created_at), (SELECT latest.error FROM outbound_messages latest WHERE latest.channel = m.channel AND latest.status = m.status AND latest.error IS NOT NULL ORDER BY latest.id DESC LIMIT 1) FROM outbound_messages m GROUP BY m.channel, m.status ORDER BY m.channel, m.status",
    "cli.outbox_status_bounded": "SELECT m.channel, m.status, count(*), min(m.created_at), (SELECT latest.error FROM outbound_messages latest WHERE latest.channel = m.channel AND latest.status = m.status AND latest.error IS NOT NULL ORDER BY latest.id DESC LIMIT 1) FROM outbound_messages m WHERE m.status IN ('pending','sending') OR m.status IN ('sent','delivered','failed','undelivered','suppressed') AND m.next_attempt_at >= now() - interval '24 hours' GROUP BY m.channel, m.status ORDER BY m.channel, m.status",
    "cli.held_retry": "UPDATE held_messages SET attempts=0, claimed_until=NULL WHERE attempts >= 8 RETURNING id",
    "cli.registry_remove.unverify": "UPDATE contacts SET verified_cnic=NULL, verified_until=NULL WHERE verified_cnic IN ('2170149059014','3310000010239','4630137363292')",
    "cli.registry_remove.open_grievances": f"SELECT count(*) FROM grievances WHERE cnic IN ({GCNIC}, '1110100010578') AND status IN ('open','in_progress','escalated')",
    "cli.registry_remove.persons_of": f"SELECT cnic FROM persons WHERE household_id IN ({HH})",
    "cli.registry_remove.payments": f"DELETE FROM payments WHERE cnic IN ({CNIC})",
    "cli.registry_remove.households": f"DELETE FROM households WHERE household_id IN ({HH})",
}


_CURSOR = re.compile(r"\$(DUE|AT)\(([0-9]+)\)")
_CURSOR_OF = {
    "DUE": "SELECT format('(%L::timestamptz, %s)', due_at, id) FROM grievances WHERE id = $1",
    "AT": "SELECT format('(%L::timestamptz, %s)', at, id) FROM audit_log WHERE id = $1",
}


async def _with_cursors(conn: asyncpg.Connection, sql: str) -> str:
    """`sql` with each $DUE(id) and $AT(id) written as that row's (moment, id)."""
    for kind, row_id in set(_CURSOR.findall(sql)):
        place = await conn.fetchval(_CURSOR_OF[kind], int(row_id))
        if place is None:
            raise SystemExit(f"no row {row_id} for ${kind}: fill bench/own_tables.sql first")
        sql = sql.replace(f"${kind}({row_id})", place)
    return sql


def _nodes(node: dict, depth: int = 0, found: list | None = None) -> list:
    found = [] if found is None else found
    label = node["Node Type"]
    if node.get("Relation Name"):
        label += f" on {node['Relation Name']}"
    if node.get("Index Name"):
        label += f" using {node['Index Name']}"
    buffers = node.get("Shared Hit Blocks", 0) + node.get("Shared Read Blocks", 0)
    found.append(
        (depth, label, node.get("Actual Rows"), buffers, node.get("Rows Removed by Filter"))
    )
    for child in node.get("Plans", []):
        _nodes(child, depth + 1, found)
    return found


async def main(only: str | None) -> dict:
    conn = await asyncpg.connect(DSN)
    results = {}
    try:
        for name, sql in STATEMENTS.items():
            if only and not re.search(only, name):
                continue
            sql = await _with_cursors(conn, sql)
            best = None
            for _ in range(3):
                transaction = conn.transaction()
                await transaction.start()
                try:
                    rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql)
                finally:
                    await transaction.rollback()
                plan = json.loads(rows[0][0])[0]
                ms = plan["Execution Time"] + plan["Planning Time"]
                if best is None or ms < best[0]:
                    best = (ms, plan)
            ms, plan = best
            nodes = _nodes(plan["Plan"])
            results[name] = {"ms": round(ms, 3), "buffers": nodes[0][3], "nodes": nodes}
            seq = "  SEQ SCAN" if any("Seq Scan" in n[1] for n in nodes) else ""
            print(f"{name:40s} {ms:9.3f} ms {nodes[0][3]:8d} buffers{seq}")
            for depth, label, rows_out, buffers, removed in nodes:
                extra = f" removed={removed}" if removed else ""
                print(f"    {'  ' * depth}{label} rows={rows_out} buffers={buffers}{extra}")
    finally:
        await conn.close()
    return results


if __name__ == "__main__":
    found = asyncio.run(main(sys.argv[2] if len(sys.argv) > 2 else None))
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w", encoding="utf-8") as handle:
            json.dump(found, handle, indent=1)
