-- Issue 24. Three things whose cost used to grow with the load or the number of users.
--
-- 1. The inbox takes the updates of concurrent webhook requests in one write: de-dup rows
--    and inbox rows of a whole batch in one synchronously committed transaction (one WAL
--    flush for the batch, not one per update). An update for which this replica has no room
--    to run now is stored *waiting*: `takes = 0` (no replica took it yet) and a lease that
--    has already run out, so the inbox taker of any replica runs it when there is room.
-- 2. `menu_sent`: a digest of the command menu last sent for each scope, so a menu is sent
--    only when it differs (a restart with 10k users costs no Bot API call).

CREATE FUNCTION take_updates_durably(p_update_ids bigint[], p_request_ids uuid[],
    p_incoming jsonb[], p_waiting boolean[], p_lease_ms bigint)
    RETURNS SETOF bigint LANGUAGE plpgsql AS $$
BEGIN
    -- Whatever the session says: the 200s wait for this commit to be flushed.
    PERFORM set_config('synchronous_commit', 'on', true);
    RETURN QUERY
    WITH batch AS (
        SELECT * FROM unnest(p_update_ids, p_request_ids, p_incoming, p_waiting)
            AS b(update_id, request_id, incoming, waiting)
    ), first AS (
        INSERT INTO processed_updates (update_id)
        SELECT update_id FROM batch ON CONFLICT DO NOTHING
        RETURNING update_id
    ), stored AS (
        INSERT INTO update_inbox (update_id, request_id, incoming, lease_until, takes)
        SELECT b.update_id, b.request_id, b.incoming,
               CASE WHEN b.waiting THEN now()
                    ELSE now() + p_lease_ms * interval '1 millisecond' END,
               CASE WHEN b.waiting THEN 0 ELSE 1 END
        FROM batch b JOIN first f USING (update_id)
        ON CONFLICT (update_id) DO NOTHING
        RETURNING update_id
    )
    SELECT update_id FROM stored;
END $$;

-- Done marks of a batch of updates in one statement (each only if its lease generation is
-- still the one that ran it). Committed without its own WAL flush by the caller.
CREATE FUNCTION finish_updates(p_update_ids bigint[], p_takes integer[])
    RETURNS SETOF bigint LANGUAGE sql AS $$
    UPDATE update_inbox u SET done_at = now()
    FROM unnest(p_update_ids, p_takes) AS d(update_id, takes)
    WHERE u.update_id = d.update_id AND u.takes = d.takes AND u.done_at IS NULL
    RETURNING u.update_id;
$$;

CREATE TABLE menu_sent (
    -- 'chat' for a user's private chat (chat_id = the user id), 'default' for the bot-wide
    -- menu (chat_id = 0).
    scope    text NOT NULL,
    chat_id  bigint NOT NULL,
    -- SHA-256 of the commands as sent (empty list = the menu deleted).
    digest   bytea NOT NULL,
    sent_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, chat_id)
);
