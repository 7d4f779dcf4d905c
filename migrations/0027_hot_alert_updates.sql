-- The pending edit of a message, found by the message it edits: the lookup every alert
-- batch makes for each pushed message it counted on. Without this index the planner,
-- before the table's first ANALYZE (or with autovacuum off), combined `outbox_edit_of` with
-- the pending-rows index and stepped over every pending row per lookup.
CREATE INDEX outbox_pending_edit ON outbox (edit_of, id) WHERE status = 'pending' AND edit_of IS NOT NULL;

-- Counting on an open alert (every batch of an attack does, for each of its sources) changes
-- only columns no index holds, so the row is updated in place on its page (a HOT update)
-- and the page prunes its own dead versions: no index entry per update, no uniqueness
-- check of `login_alerts_open` stepping over every dead version of the key. `last_at` left
-- the indexes for that: `/alerts` lists open alerts (the `login_alerts_open` index, then a
-- sort of the few it finds), and a batch finds a key's alerts by rule and key alone.
DROP INDEX login_alerts_recent;
DROP INDEX login_alerts_rule_key;
CREATE INDEX login_alerts_by_key ON login_alerts (rule, key);
ALTER TABLE login_alerts SET (fillfactor = 50);
-- A pending edit takes each new text in place the same way.
ALTER TABLE outbox SET (fillfactor = 80);
