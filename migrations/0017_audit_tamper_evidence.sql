-- The audit log becomes tamper-evident against opsguard's own runtime database role.
--
-- 1. A keyed chain. From audit_head.keyed_from on, each row's hash is
--    HMAC-SHA256(chain key, prev_hash ‖ seq ‖ content_hash), computed by opsguard with a key
--    derived from OPSGUARD_MASTER_KEY; the database never sees the key. Rows before the
--    switch point keep their SHA-256 links and keep verifying. key_id (a fingerprint of the
--    chain key) lets a process with another master key refuse to extend the chain.
-- 2. Appends only through functions. Every audit function is SECURITY DEFINER, owned by the
--    role that ran the migrations, with a fixed search_path; the runtime role is granted
--    SELECT on the audit objects and nothing else (opsguard_grant_runtime), so it cannot
--    disable the triggers, delete, rewrite, or insert past the head.

ALTER TABLE audit_head ADD COLUMN keyed_from bigint, ADD COLUMN key_id text;

-- Unkeyed appends (a process without a master key) are refused once the chain is keyed.
CREATE OR REPLACE FUNCTION audit_refuse_unkeyed() RETURNS void LANGUAGE plpgsql
SET search_path = public, pg_temp AS $$
BEGIN
    IF (SELECT keyed_from FROM audit_head WHERE id) IS NOT NULL THEN
        RAISE EXCEPTION 'the audit chain is keyed: appending needs OPSGUARD_MASTER_KEY'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END $$;

CREATE OR REPLACE FUNCTION audit_append(
    p_request_id text, p_at timestamptz, p_phase text, p_actor_kind text, p_actor_id bigint,
    p_chat_id bigint, p_command text, p_args text, p_decision text, p_reason text,
    p_outcome text, p_error text, p_duration_ms bigint, p_content_hash bytea
) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN audit_append_batch(ARRAY[p_request_id], ARRAY[p_at], ARRAY[p_phase],
        ARRAY[p_actor_kind], ARRAY[p_actor_id], ARRAY[p_chat_id], ARRAY[p_command],
        ARRAY[p_args], ARRAY[p_decision], ARRAY[p_reason], ARRAY[p_outcome], ARRAY[p_error],
        ARRAY[p_duration_ms], ARRAY[p_content_hash]);
END $$;

CREATE OR REPLACE FUNCTION audit_append_batch(
    p_request_id text[], p_at timestamptz[], p_phase text[], p_actor_kind text[], p_actor_id bigint[],
    p_chat_id bigint[], p_command text[], p_args text[], p_decision text[], p_reason text[],
    p_outcome text[], p_error text[], p_duration_ms bigint[], p_content_hash bytea[]
) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
SET lock_timeout = '10s' AS $$
DECLARE
    head audit_head%ROWTYPE;
    s bigint;
    h bytea;
    next_hash bytea;
BEGIN
    SELECT * INTO head FROM audit_head WHERE id FOR UPDATE;
    PERFORM audit_refuse_unkeyed();
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

-- Keyed appends are chained by opsguard after the head it last saw (seq and hash), and
-- appended in one statement: the function locks the head and refuses (serialization_failure)
-- when the head is elsewhere. The caller then takes the slow road: in one transaction it
-- locks the head (audit_lock_head), chains after it, and appends.
CREATE FUNCTION audit_lock_head(OUT seq bigint, OUT row_hash bytea)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '10s' AS $$
    SELECT seq, row_hash FROM audit_head WHERE id FOR UPDATE
$$;

CREATE FUNCTION audit_append_keyed(
    p_after_seq bigint, p_after_hash bytea, p_key_id text,
    p_request_id text[], p_at timestamptz[], p_phase text[], p_actor_kind text[], p_actor_id bigint[],
    p_chat_id bigint[], p_command text[], p_args text[], p_decision text[], p_reason text[],
    p_outcome text[], p_error text[], p_duration_ms bigint[], p_content_hash bytea[],
    p_row_hash bytea[]
) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
SET lock_timeout = '10s' AS $$
DECLARE
    head audit_head%ROWTYPE;
    n int := coalesce(array_length(p_request_id, 1), 0);
    s bigint;
    h bytea;
BEGIN
    SELECT * INTO head FROM audit_head WHERE id FOR UPDATE;
    IF head.seq <> p_after_seq OR head.row_hash <> p_after_hash THEN
        RAISE EXCEPTION 'audit head is at %, the rows were chained after %', head.seq, p_after_seq
            USING ERRCODE = 'serialization_failure';
    END IF;
    IF p_key_id IS NULL OR (head.key_id IS NOT NULL AND head.key_id <> p_key_id) THEN
        RAISE EXCEPTION 'the audit chain is keyed with key %, not %', head.key_id, p_key_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF n = 0 OR coalesce(array_length(p_row_hash, 1), 0) <> n THEN
        RAISE EXCEPTION 'one row hash per entry, at least one entry';
    END IF;
    s := head.seq;
    h := head.row_hash;
    FOR i IN 1 .. n LOOP
        IF length(p_row_hash[i]) <> 32 OR length(p_content_hash[i]) <> 32 THEN
            RAISE EXCEPTION 'hashes are 32 bytes';
        END IF;
        s := s + 1;
        INSERT INTO audit_log (seq, request_id, at, phase, actor_kind, actor_id, chat_id, command, args,
            decision, reason, outcome, error, duration_ms, content_hash, prev_hash, row_hash)
        VALUES (s, p_request_id[i], p_at[i], p_phase[i], p_actor_kind[i], p_actor_id[i], p_chat_id[i],
            p_command[i], p_args[i], p_decision[i], p_reason[i], p_outcome[i], p_error[i],
            p_duration_ms[i], p_content_hash[i], h, p_row_hash[i]);
        h := p_row_hash[i];
    END LOOP;
    UPDATE audit_head
    SET seq = s, row_hash = h, key_id = p_key_id,
        keyed_from = coalesce(head.keyed_from, head.seq + 1)
    WHERE id;
    RETURN head.seq + 1;
END $$;

ALTER FUNCTION audit_refuse_change() SECURITY DEFINER SET search_path = public, pg_temp;

-- Nobody but the owner writes the audit objects directly; the runtime role gets SELECT and
-- EXECUTE on the functions (opsguard_grant_runtime); other roles of the cluster get nothing.
REVOKE ALL ON audit_log, audit_head FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION audit_append(text, timestamptz, text, text, bigint, bigint, text, text,
    text, text, text, text, bigint, bytea) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION audit_append_batch(text[], timestamptz[], text[], text[], bigint[],
    bigint[], text[], text[], text[], text[], text[], text[], bigint[], bytea[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION audit_append_keyed(bigint, bytea, text, text[], timestamptz[], text[], text[],
    bigint[], bigint[], text[], text[], text[], text[], text[], text[], bigint[], bytea[], bytea[])
    FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION audit_lock_head() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION audit_refuse_unkeyed() FROM PUBLIC;
-- Where the schema lets every role create objects (clusters from before PostgreSQL 15), stop it.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- Run by the owner (`opsguard migrate` with [database] runtime_role): the runtime role may
-- read and write opsguard's tables, but only read the audit objects and append through the
-- functions above. Safe to run again after every migration.
CREATE FUNCTION opsguard_grant_runtime(p_role text) RETURNS void LANGUAGE plpgsql
SET search_path = public, pg_temp AS $$
DECLARE
    owner_oid oid := (SELECT relowner FROM pg_class WHERE oid = 'audit_log'::regclass);
    r record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_role) THEN
        RAISE EXCEPTION 'runtime role % does not exist: create it first (CREATE ROLE % LOGIN PASSWORD ...)', p_role, p_role;
    END IF;
    IF pg_has_role(p_role, owner_oid, 'MEMBER') THEN
        RAISE EXCEPTION 'runtime role % owns the audit log (or is a member of its owner %): it must be another role',
            p_role, owner_oid::regrole;
    END IF;
    IF (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = p_role) THEN
        RAISE EXCEPTION 'runtime role % is a superuser or may create roles: it could alter the audit log', p_role;
    END IF;
    IF pg_has_role(p_role, (SELECT datdba FROM pg_database WHERE datname = current_database()), 'MEMBER')
       OR pg_has_role(p_role, (SELECT nspowner FROM pg_namespace WHERE nspname = 'public'), 'MEMBER') THEN
        RAISE EXCEPTION 'runtime role % owns the database or its schema: it could drop and recreate the audit log', p_role;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), p_role);
    EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', p_role);
    EXECUTE format('REVOKE CREATE ON SCHEMA public FROM %I', p_role);
    FOR r IN SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'S')
    LOOP
        IF r.relkind = 'S' THEN
            EXECUTE format('GRANT USAGE, SELECT, UPDATE ON SEQUENCE %s TO %I', r.name, p_role);
        ELSIF r.name::text IN ('audit_log', 'audit_head', '_sqlx_migrations') THEN
            EXECUTE format('REVOKE ALL ON %s FROM %I', r.name, p_role);
            EXECUTE format('GRANT SELECT ON %s TO %I', r.name, p_role);
        ELSE
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %I', r.name, p_role);
        END IF;
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS sig FROM pg_proc p
             WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'audit\_%'
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', r.sig, p_role);
    END LOOP;
END $$;
REVOKE ALL ON FUNCTION opsguard_grant_runtime(text) FROM PUBLIC;

-- What the connected role could do to the audit log beyond appending: a non-empty answer
-- means a single-role set-up (opsguard runs as the owner, or as a superuser).
CREATE FUNCTION audit_write_powers() RETURNS text[] LANGUAGE sql STABLE
SET search_path = public, pg_temp AS $$
    SELECT array_remove(ARRAY[
        CASE WHEN (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN 'superuser' END,
        CASE WHEN EXISTS (SELECT 1 FROM pg_class c
                          WHERE c.oid IN ('audit_log'::regclass, 'audit_head'::regclass)
                            AND pg_has_role(current_user, c.relowner, 'MEMBER'))
             THEN 'owns the audit tables' END,
        CASE WHEN EXISTS (SELECT 1 FROM pg_proc p
                          WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'audit\_%'
                            AND pg_has_role(current_user, p.proowner, 'MEMBER'))
             THEN 'owns the audit functions' END,
        CASE WHEN (SELECT rolcreaterole FROM pg_roles WHERE rolname = current_user)
             THEN 'may create roles' END,
        CASE WHEN pg_has_role(current_user, (SELECT datdba FROM pg_database WHERE datname = current_database()), 'MEMBER')
               OR pg_has_role(current_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'public'), 'MEMBER')
             THEN 'owns the database or its schema' END,
        CASE WHEN has_schema_privilege('public', 'CREATE')
             THEN 'may create objects in the schema' END,
        CASE WHEN has_table_privilege('audit_log', 'UPDATE, DELETE, TRUNCATE, TRIGGER')
               OR has_table_privilege('audit_head', 'INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER')
               OR has_any_column_privilege('audit_log', 'INSERT, UPDATE')
               OR has_any_column_privilege('audit_head', 'INSERT, UPDATE')
             THEN 'may write the audit tables directly' END
    ], NULL)
$$;
