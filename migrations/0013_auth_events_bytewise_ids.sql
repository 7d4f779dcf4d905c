-- Event ids and senders are opaque tokens: compare them byte by byte (collation "C"), not by
-- the database's locale. Under a libc locale (even C.UTF-8) every comparison in the unique
-- index (sender, event_id) called strcoll — about a tenth of PostgreSQL's time in a batch
-- insert. Only the index order changes; uniqueness of byte-equal ids is the same.
ALTER TABLE auth_events
    ALTER COLUMN event_id TYPE text COLLATE "C",
    ALTER COLUMN sender TYPE text COLLATE "C";
