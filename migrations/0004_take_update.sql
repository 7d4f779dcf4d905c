-- Update de-duplication: PostgreSQL is the authority (Redis only a fast filter in front),
-- so an update taken while Redis was down, or by a replica whose Redis call timed out, is
-- still recognised. The insert commits asynchronously: it costs no WAL flush, and a crash
-- can forget at most the last few hundred milliseconds of ids.
CREATE FUNCTION take_update(p_update_id bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO processed_updates (update_id) VALUES (p_update_id) ON CONFLICT DO NOTHING;
    RETURN FOUND;
END $$;
