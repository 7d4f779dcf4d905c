-- Group commit for the audit log: append many entries under one head lock, in one
-- transaction (one WAL flush), extending the chain exactly as audit_append does.
CREATE FUNCTION audit_append_batch(
    p_request_id text[], p_at timestamptz[], p_phase text[], p_actor_kind text[], p_actor_id bigint[],
    p_chat_id bigint[], p_command text[], p_args text[], p_decision text[], p_reason text[],
    p_outcome text[], p_error text[], p_duration_ms bigint[], p_content_hash bytea[]
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    head audit_head%ROWTYPE;
    s bigint;
    h bytea;
    next_hash bytea;
BEGIN
    SELECT * INTO head FROM audit_head WHERE id FOR UPDATE;
    s := head.seq;
    h := head.row_hash;
    FOR i IN 1 .. coalesce(array_length(p_request_id, 1), 0) LOOP
        s := s + 1;
        next_hash := sha256(h || int8send(s) || p_content_hash[i]);
        INSERT INTO audit_log (seq, request_id, at, phase, actor_kind, actor_id, chat_id, command, args,
            decision, reason, outcome, error, duration_ms, content_hash, prev_hash, row_hash)
        VALUES (s, p_request_id[i], p_at[i], p_phase[i], p_actor_kind[i], p_actor_id[i], p_chat_id[i],
            p_command[i], p_args[i], p_decision[i], p_reason[i], p_outcome[i], p_error[i],
            p_duration_ms[i], p_content_hash[i], h, next_hash);
        h := next_hash;
    END LOOP;
    UPDATE audit_head SET seq = s, row_hash = h WHERE id;
    RETURN head.seq + 1;
END $$;
