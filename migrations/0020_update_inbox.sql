-- The durable update inbox: an update answered 200 is never lost. Before the webhook (or
-- the poller) acknowledges an update, `take_update_durably` writes its de-dup row and its
-- inbox row in one transaction that commits synchronously (a WAL flush: a crash after the
-- 200 cannot forget it). The replica that took it processes it under a lease it renews
-- while the command runs; when the lease runs out (the replica died), any replica takes the
-- row up (`FOR UPDATE SKIP LOCKED`). `request_id` is the id the pipeline audits under, so the
-- re-taker can tell "never started" (no audit attempt) from "interrupted" (an attempt
-- without an outcome), which is reported, never run again.
CREATE TABLE update_inbox (
    update_id   bigint PRIMARY KEY,
    request_id  uuid NOT NULL,
    -- The translated request and where its reply goes (bot::inbox::Stored).
    incoming    jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    lease_until timestamptz NOT NULL,
    -- How many times a replica took it (1 at the first take): a lease generation, so a
    -- replica whose lease was taken over renews and finishes nothing.
    takes       integer NOT NULL DEFAULT 1,
    done_at     timestamptz
);
CREATE INDEX update_inbox_expired ON update_inbox (lease_until) WHERE done_at IS NULL;
CREATE INDEX update_inbox_done ON update_inbox (done_at) WHERE done_at IS NOT NULL;

-- De-dup and inbox in one write: true when this call is the first to see the update id.
CREATE FUNCTION take_update_durably(p_update_id bigint, p_request_id uuid, p_incoming jsonb,
    p_lease_ms bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    -- Whatever the session says: the 200 waits for this commit to be flushed.
    PERFORM set_config('synchronous_commit', 'on', true);
    INSERT INTO processed_updates (update_id) VALUES (p_update_id) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO update_inbox (update_id, request_id, incoming, lease_until)
    VALUES (p_update_id, p_request_id, p_incoming, now() + p_lease_ms * interval '1 millisecond')
    ON CONFLICT (update_id) DO NOTHING;
    RETURN FOUND;
END $$;
