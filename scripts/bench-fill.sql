-- scripts/bench: what other tenants add around one business at scale.
-- Clones business load-0's first subscription, invoice and event :n times
-- into businesses fill-1 … fill-:n (one each, in directory demo), so that
-- ListSubscriptions, ListInvoices and ListEvents of load-0 are read among
-- :n rows of each (Postgres; run with psql -v n=N). The record is built in
-- a LATERAL join: `(f(row)).*` would call f once per column.
\set ON_ERROR_STOP 1
BEGIN;
INSERT INTO businesses (business_id, directory_id, create_time)
  SELECT 'fill-' || g, b.directory_id, b.create_time
  FROM businesses b, generate_series(1, :n) g WHERE b.business_id = 'load-0';
INSERT INTO subscriptions
  SELECT r.*
  FROM (SELECT * FROM subscriptions WHERE business_id = 'load-0' ORDER BY id LIMIT 1) s, generate_series(1, :n) g,
       LATERAL jsonb_populate_record(NULL::subscriptions, to_jsonb(s) || jsonb_build_object('id', 'sub-fill-' || g, 'business_id', 'fill-' || g)) r;
INSERT INTO invoices
  SELECT r.*
  FROM (SELECT * FROM invoices WHERE business_id = 'load-0' ORDER BY id LIMIT 1) i, generate_series(1, :n) g,
       LATERAL jsonb_populate_record(NULL::invoices, to_jsonb(i) || jsonb_build_object('id', 'inv-fill-' || g, 'number', 'FILL-' || g,
         'business_id', 'fill-' || g, 'subscription_id', 'sub-fill-' || g)) r;
-- Later in the stream than load-0's own events, as other tenants' news is.
INSERT INTO outbox_events
  SELECT r.*
  FROM (SELECT * FROM outbox_events WHERE business_id = 'load-0' AND published_sequence IS NOT NULL
        ORDER BY published_sequence LIMIT 1) e,
       (SELECT max(sequence) AS seq, max(published_sequence) AS published FROM outbox_events) m,
       generate_series(1, :n) g,
       LATERAL jsonb_populate_record(NULL::outbox_events, to_jsonb(e) || jsonb_build_object('sequence', m.seq + g, 'id', 'evt-fill-' || g,
         'business_id', 'fill-' || g, 'subscription_id', 'sub-fill-' || g, 'published_sequence', m.published + g)) r;
SELECT setval(pg_get_serial_sequence('outbox_events', 'sequence'), (SELECT max(sequence) FROM outbox_events));
COMMIT;
-- Measured as a settled database, not one still vacuuming and writing out
-- a million new rows in the background.
VACUUM ANALYZE;
CHECKPOINT;
