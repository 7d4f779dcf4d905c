-- Issue 19/24: a direct reply's pacing slot in ONE statement (it was seven round trips on
-- every reply's path: begin, SET LOCAL, advisory lock, read, delete, insert, commit), and the
-- inbox's done marks committed lazily in one statement (it was four).

-- Reserve the next slot for a direct reply to `p_chat` and return how many seconds from
-- now it is (0: at once), or NULL when that is more than `p_max_wait` (nothing reserved).
-- Per chat: at most `p_burst` sends in `p_window` seconds; a group (`p_chat` < 0) also at
-- most `p_per_minute` in 60 s; the sends counted are the chat's direct replies (sent and
-- reserved), the outbox's sends, and the outbox's sends in flight (as now). Serialized per
-- chat by an advisory lock; committed without a WAL flush of its own (pacing bookkeeping:
-- a crash loses at most the last few slots, which only pace).
CREATE FUNCTION reserve_direct_send(p_chat bigint, p_burst integer, p_window float8,
    p_per_minute integer, p_max_wait float8)
    RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    t_now timestamptz;
    wait float8 := 0;
    times float8[];
    n integer;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM pg_advisory_xact_lock(hashtextextended('direct_sends:' || p_chat, 0));
    t_now := clock_timestamp();
    -- Newest first: times[k] is the k-th newest send (seconds from now; in flight: 0).
    SELECT coalesce(array_agg(x.t ORDER BY x.t DESC), '{}') INTO times FROM (
        SELECT EXTRACT(EPOCH FROM d.sent_at - t_now)::float8 AS t FROM direct_sends d
        WHERE d.chat_id = p_chat AND d.sent_at > t_now - interval '60 seconds'
        UNION ALL
        SELECT EXTRACT(EPOCH FROM o.sent_at - t_now)::float8 FROM outbox o
        WHERE o.chat_id = p_chat AND o.status = 'sent'
          AND o.sent_at > t_now - interval '60 seconds'
        UNION ALL
        SELECT 0 FROM outbox o
        WHERE o.chat_id = p_chat AND o.status = 'pending' AND o.lease_until > t_now) x;
    n := cardinality(times);
    IF n >= greatest(p_burst, 1) THEN
        wait := greatest(wait, times[greatest(p_burst, 1)] + p_window);
    END IF;
    IF p_chat < 0 AND n >= greatest(p_per_minute, 1) THEN
        wait := greatest(wait, times[greatest(p_per_minute, 1)] + 60);
    END IF;
    IF p_max_wait IS NOT NULL AND wait > p_max_wait THEN
        RETURN NULL;
    END IF;
    DELETE FROM direct_sends WHERE chat_id = p_chat AND sent_at < now() - interval '5 minutes';
    INSERT INTO direct_sends (chat_id, sent_at)
    VALUES (p_chat, clock_timestamp() + make_interval(secs => wait));
    RETURN wait;
END $$;

CREATE FUNCTION finish_updates_lazily(p_update_ids bigint[], p_takes integer[])
    RETURNS SETOF bigint LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    RETURN QUERY SELECT finish_updates(p_update_ids, p_takes);
END $$;
