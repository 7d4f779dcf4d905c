-- no-transaction
-- The locale-ordered unique index on (sender, event_id), replaced by 0014's bytewise one.
DROP INDEX CONCURRENTLY IF EXISTS auth_events_event_id;
