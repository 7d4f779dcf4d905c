-- no-transaction
-- Event ids and senders are opaque tokens: the unique index compares them byte by byte
-- (collation "C"), not by the database's locale. Under a libc locale (even C.UTF-8) every
-- comparison in it called strcoll — about a tenth of PostgreSQL's time in a batch insert.
-- Built CONCURRENTLY beside the old index (dropped by 0015), so ingest is not blocked while
-- a large table is indexed. `ON CONFLICT (sender, event_id)` infers either index, and
-- uniqueness is the same: a deterministic collation calls two ids equal only if their bytes
-- are.
CREATE UNIQUE INDEX CONCURRENTLY auth_events_event_id_bytes
    ON auth_events (sender COLLATE "C", event_id COLLATE "C") WHERE event_id IS NOT NULL;
