-- Foundation: users, roles as data, allow-listed chats, hash-chained audit log,
-- processed update ids, pending actions (confirmations, approvals, step-ups), TOTP.

CREATE TABLE roles (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,31}$'),
    description text NOT NULL
);

CREATE TABLE role_permissions (
    role       text NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    permission text NOT NULL,
    PRIMARY KEY (role, permission)
);

INSERT INTO roles (name, description) VALUES
    ('viewer',   'read-only: help, whoami, status, findings, logins, alerts, backups, secrets list'),
    ('operator', 'viewer + run checks, trigger backups, ack and silence alerts'),
    ('admin',    'everything: rotation, restore tests, users, audit, approvals');

-- Each permission names the least role that holds it; higher roles inherit it.
WITH levels (role, level) AS (VALUES ('viewer', 1), ('operator', 2), ('admin', 3)),
perms (permission, least_role) AS (VALUES
    ('help', 'viewer'), ('whoami', 'viewer'), ('status', 'viewer'), ('totp.self', 'viewer'),
    ('findings.read', 'viewer'), ('logins.read', 'viewer'), ('alerts.read', 'viewer'),
    ('backups.read', 'viewer'), ('secrets.read', 'viewer'),
    ('checks.run', 'operator'), ('backups.run', 'operator'), ('alerts.manage', 'operator'),
    ('secrets.rotate', 'admin'), ('backups.restore_test', 'admin'), ('users.read', 'admin'),
    ('users.manage', 'admin'), ('audit.read', 'admin'), ('approvals.decide', 'admin'))
INSERT INTO role_permissions (role, permission)
SELECT holder.role, p.permission
FROM perms p
JOIN levels least ON least.role = p.least_role
JOIN levels holder ON holder.level >= least.level;

CREATE TABLE users (
    telegram_id  bigint PRIMARY KEY CHECK (telegram_id > 0),
    display_name text NOT NULL,
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_roles (
    telegram_id bigint NOT NULL REFERENCES users (telegram_id) ON DELETE CASCADE,
    role        text NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    granted_by  text NOT NULL,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (telegram_id, role)
);

CREATE TABLE allowed_chats (
    chat_id  bigint PRIMARY KEY,
    title    text NOT NULL DEFAULT '',
    added_at timestamptz NOT NULL DEFAULT now()
);

-- Any change to who may do what is broadcast, so every replica drops its cached permissions.
CREATE FUNCTION notify_authz_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('opsguard_authz', COALESCE(
        CASE TG_TABLE_NAME
            WHEN 'users' THEN COALESCE(NEW.telegram_id, OLD.telegram_id)::text
            WHEN 'user_roles' THEN COALESCE(NEW.telegram_id, OLD.telegram_id)::text
        END, '*'));
    RETURN NULL;
END $$;

CREATE TRIGGER users_authz AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION notify_authz_change();
CREATE TRIGGER user_roles_authz AFTER INSERT OR UPDATE OR DELETE ON user_roles
    FOR EACH ROW EXECUTE FUNCTION notify_authz_change();
CREATE TRIGGER role_permissions_authz AFTER INSERT OR UPDATE OR DELETE ON role_permissions
    FOR EACH ROW EXECUTE FUNCTION notify_authz_change();

-- The audit log: append-only and hash-chained (see src/domain/audit.rs for the hashes).
CREATE TABLE audit_log (
    seq          bigint PRIMARY KEY,
    request_id   text NOT NULL,
    at           timestamptz NOT NULL,
    phase        text NOT NULL CHECK (phase IN ('attempt', 'outcome')),
    actor_kind   text NOT NULL,
    actor_id     bigint,
    chat_id      bigint,
    command      text NOT NULL,
    args         text NOT NULL,
    decision     text NOT NULL,
    reason       text,
    outcome      text,
    error        text,
    duration_ms  bigint,
    content_hash bytea NOT NULL,
    prev_hash    bytea NOT NULL,
    row_hash     bytea NOT NULL
);
CREATE INDEX audit_log_request ON audit_log (request_id);

CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END $$;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- The chain head: one row, locked by each append, so concurrent writers line up and the
-- chain never forks. One round trip per append: the caller passes the content hash.
CREATE TABLE audit_head (
    id       boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq      bigint NOT NULL,
    row_hash bytea NOT NULL
);
INSERT INTO audit_head (seq, row_hash) VALUES (0, '\x0000000000000000000000000000000000000000000000000000000000000000');

CREATE FUNCTION audit_append(
    p_request_id text, p_at timestamptz, p_phase text, p_actor_kind text, p_actor_id bigint,
    p_chat_id bigint, p_command text, p_args text, p_decision text, p_reason text,
    p_outcome text, p_error text, p_duration_ms bigint, p_content_hash bytea
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    head audit_head%ROWTYPE;
    new_seq bigint;
    new_hash bytea;
BEGIN
    SELECT * INTO head FROM audit_head WHERE id FOR UPDATE;
    new_seq := head.seq + 1;
    new_hash := sha256(head.row_hash || int8send(new_seq) || p_content_hash);
    INSERT INTO audit_log (seq, request_id, at, phase, actor_kind, actor_id, chat_id, command,
        args, decision, reason, outcome, error, duration_ms, content_hash, prev_hash, row_hash)
    VALUES (new_seq, p_request_id, p_at, p_phase, p_actor_kind, p_actor_id, p_chat_id, p_command,
        p_args, p_decision, p_reason, p_outcome, p_error, p_duration_ms, p_content_hash,
        head.row_hash, new_hash);
    UPDATE audit_head SET seq = new_seq, row_hash = new_hash WHERE id;
    RETURN new_seq;
END $$;

-- Telegram update ids already taken (the fallback de-dup when Redis is down).
CREATE TABLE processed_updates (
    update_id   bigint PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Server-side state behind every inline button and approval request.
CREATE TABLE pending_actions (
    id           text PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('confirm', 'stepup', 'approval')),
    user_id      bigint NOT NULL,
    chat_id      bigint NOT NULL,
    command      text NOT NULL,
    need_stepup  boolean NOT NULL DEFAULT false,
    need_approval boolean NOT NULL DEFAULT false,
    request_id   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'confirmed', 'cancelled', 'approved', 'denied', 'completed')),
    decided_by   bigint
);
CREATE INDEX pending_actions_user ON pending_actions (user_id, kind) WHERE used_at IS NULL;

-- TOTP step-up: one authenticator per user.
CREATE TABLE totp_enrolments (
    telegram_id  bigint PRIMARY KEY REFERENCES users (telegram_id) ON DELETE CASCADE,
    secret_b32   text NOT NULL,
    confirmed    boolean NOT NULL DEFAULT false,
    failures     int NOT NULL DEFAULT 0,
    locked_until timestamptz,
    last_step    bigint NOT NULL DEFAULT 0
);
