-- Every outbox row that pushed an alert (one per alert chat), so a pushed alert can be edited
-- in place as it counts on. `outbox_id` (the first) stays for what reads it.
ALTER TABLE login_alerts ADD COLUMN outbox_ids bigint[] NOT NULL DEFAULT '{}';
UPDATE login_alerts SET outbox_ids = ARRAY[outbox_id] WHERE outbox_id IS NOT NULL;
