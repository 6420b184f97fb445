-- Rabta's own tables at a national deployment's shape, beside the bench's seeded registry:
-- a million contacts, inbound and outbound messages and audit entries, 100,000 grievances (85 %
-- resolved) with 300,000 events, 2,000 held messages. For checking query plans (bench/plans.py):
--
--   psql -h 127.0.0.1 -U postgres -d rabta_bench -f bench/own_tables.sql
--   psql -h 127.0.0.1 -U postgres -d rabta_bench -c "VACUUM ANALYZE"
--
-- It empties those tables first; `make bench` empties the message tables again (and what hangs
-- off contacts) before its runs.
SET synchronous_commit = off;
TRUNCATE inbound_messages, contacts, held_messages, outbound_messages, grievance_events, grievances, audit_log, agents CASCADE;

INSERT INTO agents (id, username, password_hash, role, active, failed_logins, created_at)
SELECT i, 'agent' || i, 'x', CASE WHEN i <= 5 THEN 'supervisor' ELSE 'agent' END, true, 0, now()
FROM generate_series(1, 200) i;

-- 1M contacts: 70% SMS (address = phone), 15% WhatsApp, 10% Telegram, 5% USSD.
INSERT INTO contacts (id, channel, address, phone, language, opted_out, verified_cnic, verified_until, created_at, last_inbound_at)
SELECT i,
  ch,
  CASE ch WHEN 'telegram' THEN (100000000 + i)::text ELSE '+923' || lpad((i::bigint * 7919 % 1000000000)::text, 9, '0') END,
  CASE WHEN ch = 'telegram' AND i % 2 = 0 THEN NULL ELSE '+923' || lpad((i::bigint * 7919 % 1000000000)::text, 9, '0') END,
  (ARRAY['en','ur','ur-Latn','sd','ps','pa-Arab', NULL])[1 + i % 7],
  i % 50 = 0,
  NULL,
  CASE WHEN i % 10 = 0 THEN now() + interval '1 day' END,
  now() - (i % 90) * interval '1 day',
  now() - (i % 90) * interval '1 day' + (i % 86400) * interval '1 second'
FROM (SELECT i, CASE WHEN i % 20 < 14 THEN 'sms' WHEN i % 20 < 17 THEN 'whatsapp' WHEN i % 20 < 19 THEN 'telegram' ELSE 'ussd' END AS ch
      FROM generate_series(1, 1000000) i) s;
-- verified CNICs: real ones from the registry
WITH p AS (SELECT cnic, row_number() OVER () AS n FROM (SELECT cnic FROM persons TABLESAMPLE SYSTEM (5) LIMIT 100000) x)
UPDATE contacts c SET verified_cnic = p.cnic FROM p WHERE c.id = p.n * 10;
SELECT setval(pg_get_serial_sequence('contacts', 'id'), 1000000);

-- 1M inbound messages over 90 days.
INSERT INTO inbound_messages (id, channel, external_id, contact_id, received_at, intent, outcome, language, reply)
SELECT i,
  (ARRAY['sms','sms','sms','whatsapp','telegram','ussd'])[1 + i % 6],
  'SM' || md5(i::text),
  1 + (i::bigint * 104729) % 1000000,
  now() - (1000000 - i) * interval '7.776 second',
  (ARRAY['cnic','cnic','cnic','payment','grievance_status','menu','help','language', NULL])[1 + i % 9],
  CASE WHEN i % 9 < 3 THEN (ARRAY['eligible','not_eligible','not_found','under_review'])[1 + i % 4] END,
  (ARRAY['en','ur','ur-Latn','sd','ps','pa-Arab'])[1 + i % 6],
  'Your household is eligible for BISP Kafaalat. Payment window opens soon.'
FROM generate_series(1, 1000000) i;
SELECT setval(pg_get_serial_sequence('inbound_messages', 'id'), 1000000);

-- 100k grievances: 85% closed, the rest worked; 150 districts.
INSERT INTO grievances (id, ticket_id, cnic, category, description, status, channel, contact_id, assigned_to, language,
  callback_requested, filed_by, district, created_at, updated_at, due_at, escalated_at, resolved_at, reopened_count)
SELECT i,
  'GRV' || lpad(i::text, 8, '0'),
  lpad((3520100000000 + i * 37)::text, 13, '0'),
  (ARRAY['payment_not_received','deduction_by_agent','biometric_failure','eligibility_dispute','data_correction','other'])[1 + i % 6],
  'Payment not received at the campsite.',
  CASE WHEN i <= 85000 THEN (CASE WHEN i % 5 = 0 THEN 'rejected' ELSE 'resolved' END)
       ELSE (ARRAY['open','open','in_progress','escalated'])[1 + i % 4] END,
  (ARRAY['sms','whatsapp','telegram','ussd','console'])[1 + i % 5],
  1 + (i * 7) % 1000000,
  CASE WHEN i % 3 = 0 THEN NULL ELSE 1 + i % 200 END,
  'ur',
  i % 10 = 0,
  NULL,
  'District ' || (i % 150),
  now() - (100000 - i) * interval '10 minute',
  now() - (100000 - i) * interval '9 minute',
  now() - (100000 - i) * interval '10 minute' + interval '7 day',
  CASE WHEN i > 85000 AND i % 4 = 3 THEN now() - interval '1 day' END,
  CASE WHEN i <= 85000 THEN now() - (100000 - i) * interval '5 minute' END,
  0
FROM generate_series(1, 100000) i;
SELECT setval(pg_get_serial_sequence('grievances', 'id'), 100000);
-- some grievances by real registry persons (so list_by_cnic finds a few)
UPDATE grievances g SET cnic = p.cnic FROM (SELECT cnic, row_number() OVER () AS n FROM (SELECT cnic FROM persons TABLESAMPLE SYSTEM (1) LIMIT 20000) x) p WHERE g.id = p.n * 5;

-- Three events each: filed when it was filed, its change to the status it holds when it was last
-- changed (as the console records them: the dashboard counts the period's closings by them), and
-- a note.
INSERT INTO grievance_events (id, grievance_id, at, actor, action, from_status, to_status, note)
SELECT i, g.id,
  CASE (i - 1) % 3 WHEN 0 THEN g.created_at ELSE g.updated_at END,
  'agent1',
  (ARRAY['filed','status_changed','note'])[1 + (i - 1) % 3],
  CASE (i - 1) % 3 WHEN 1 THEN 'open' END,
  CASE (i - 1) % 3 WHEN 0 THEN 'open' WHEN 1 THEN g.status END,
  CASE (i - 1) % 3 WHEN 2 THEN 'Called back.' END
FROM generate_series(1, 300000) i JOIN grievances g ON g.id = 1 + (i - 1) / 3;
SELECT setval(pg_get_serial_sequence('grievance_events', 'id'), 300000);

-- 1M outbound messages: nearly all done; a backlog of 2,000 waiting.
INSERT INTO outbound_messages (id, channel, "to", body, kind, language, priority, status, attempts, next_attempt_at,
  locked_until, claimed_by, dedup_key, template, template_variables, grievance_id, provider_id, provider_status, error, created_at, sent_at, delivered_at)
SELECT i,
  (ARRAY['sms','sms','whatsapp','telegram'])[1 + i % 4],
  '+923' || lpad((i::bigint * 7919 % 1000000000)::text, 9, '0'),
  'Your complaint GRV00001234 is now in progress.',
  (ARRAY['reply','otp','grievance_status','escalation'])[1 + i % 4],
  'ur',
  CASE WHEN i % 4 = 1 THEN 1 ELSE 5 END,
  CASE WHEN i > 998000 THEN (CASE WHEN i % 10 = 0 THEN 'sending' ELSE 'pending' END)
       WHEN i % 100 = 0 THEN 'failed' WHEN i % 50 = 1 THEN 'undelivered' WHEN i % 3 = 0 THEN 'sent' ELSE 'delivered' END,
  1,
  now() - (1000000 - i) * interval '7 second' + CASE WHEN i > 999500 THEN interval '1 hour' ELSE interval '0' END,
  CASE WHEN i > 998000 AND i % 10 = 0 THEN now() + interval '1 minute' END,
  CASE WHEN i > 998000 AND i % 10 = 0 THEN 'worker-1' END,
  CASE WHEN i % 4 = 2 THEN 'grievance-event:' || i WHEN i % 4 = 1 THEN 'otp:' || md5(i::text) END,
  NULL, NULL,
  CASE WHEN i % 4 = 2 THEN 1 + i % 100000 END,
  CASE WHEN i <= 998000 THEN 'SM' || md5('out' || i) END,
  CASE WHEN i <= 998000 THEN 'delivered' END,
  CASE WHEN i % 100 = 0 THEN 'twilio error 30003' END,
  now() - (1000000 - i) * interval '7 second',
  CASE WHEN i <= 998000 THEN now() - (1000000 - i) * interval '7 second' END,
  NULL
FROM generate_series(1, 1000000) i;
SELECT setval(pg_get_serial_sequence('outbound_messages', 'id'), 1000000);

-- 1M audit entries.
INSERT INTO audit_log (id, at, actor, action, record_type, record_id, reason, client_ip)
SELECT i, now() - (1000000 - i) * interval '7 second', 'agent' || (1 + i % 200),
  (ARRAY['lookup','view','verify','send_code','login'])[1 + i % 5],
  CASE WHEN i % 5 = 4 THEN 'agent' ELSE 'person' END,
  CASE WHEN i % 5 = 4 THEN 'agent' || (1 + i % 200) ELSE lpad((3520100000000 + i * 37)::text, 13, '0') END,
  NULL, '10.0.0.1'
FROM generate_series(1, 1000000) i;
SELECT setval(pg_get_serial_sequence('audit_log', 'id'), 1000000);

-- 2,000 held messages from a surge, 200 given up.
INSERT INTO held_messages (id, channel, external_id, sender, phone, text, received_at, attempts, claimed_until, counted, media)
SELECT i, 'sms', 'SMheld' || i, '+923' || lpad(i::text, 9, '0'), '+923' || lpad(i::text, 9, '0'), '3520112345671',
  now() - (2000 - i) * interval '1 second', CASE WHEN i <= 200 THEN 8 ELSE 0 END, NULL, false, false
FROM generate_series(1, 2000) i;
SELECT setval(pg_get_serial_sequence('held_messages', 'id'), 2000);
