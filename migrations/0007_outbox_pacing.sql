-- Outbox pacing and dead letters (issue 3). Per-chat and per-group limits are read from the
-- sent rows themselves (the claiming transaction sees every replica's committed sends, and a
-- chat's head row is locked while it is in flight), so they need an index on recent sends.
CREATE INDEX outbox_sent_chat ON outbox (chat_id, sent_at) WHERE status = 'sent';
CREATE INDEX outbox_dead ON outbox (id) WHERE status = 'dead';

-- The overall limit shared by replicas: one token bucket, taken in its own short statement
-- (never held across a send), so replicas never wait on each other for it.
CREATE TABLE outbox_rate (
    id          int PRIMARY KEY CHECK (id = 1),
    tokens      double precision NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO outbox_rate (id, tokens) VALUES (1, 0);
