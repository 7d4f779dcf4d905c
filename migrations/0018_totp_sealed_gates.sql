-- Issue 13, sections 2, 5 and 6: TOTP secrets sealed in the vault, enrolments that expire
-- and take their message with them, escalating lockouts, system roles, pending-action pruning.

-- TOTP secrets are sealed (AES-256-GCM under the master key, associated data `totp/<user>`).
-- `secret_b32` is kept only for rows written before this migration: start-up seals them when
-- a master key is set, and step-up refuses them while it is not.
ALTER TABLE totp_enrolments ALTER COLUMN secret_b32 DROP NOT NULL;
ALTER TABLE totp_enrolments ADD COLUMN secret_nonce bytea;
ALTER TABLE totp_enrolments ADD COLUMN secret_sealed bytea;
-- A secret an older version showed in the chat (its URI message stays in the history, where
-- whoever holds the Telegram account reads it): sealed at start-up, but it no longer passes
-- step-up or re-enrolment; only a shell reset (`opsguard user reset-totp`) clears it.
ALTER TABLE totp_enrolments ADD COLUMN exposed boolean NOT NULL DEFAULT false;
-- How many lockouts since the last good code: each one lasts twice as long as the one before.
ALTER TABLE totp_enrolments ADD COLUMN lockouts int NOT NULL DEFAULT 0;
ALTER TABLE totp_enrolments ADD CONSTRAINT totp_enrolments_secret_present
    CHECK (secret_b32 IS NOT NULL OR (secret_nonce IS NOT NULL AND secret_sealed IS NOT NULL));
-- An unconfirmed plaintext enrolment was shown in a chat that keeps it forever: drop it
-- (its user enrols again; the new URI is protected and deleted).
DELETE FROM totp_enrolments WHERE NOT confirmed;

-- An enrolment in progress: the new secret (sealed), until it is confirmed by a code or
-- expires. The message that showed its URI is deleted on either (through the outbox).
-- A confirmed authenticator stays in totp_enrolments until the new one is confirmed.
CREATE TABLE totp_pending (
    telegram_id   bigint PRIMARY KEY REFERENCES users (telegram_id) ON DELETE CASCADE,
    secret_nonce  bytea NOT NULL,
    secret_sealed bytea NOT NULL,
    expires_at    timestamptz NOT NULL,
    chat_id       bigint,
    message_id    bigint
);
CREATE INDEX totp_pending_expires ON totp_pending (expires_at);

-- An outbox row may delete a message instead of sending one (`deleteMessage`).
ALTER TABLE outbox ADD COLUMN delete_message bigint;

-- System roles (the scheduler's) are held by no person: refused in chat and in the shell,
-- and this trigger refuses them whatever writes the row.
ALTER TABLE roles ADD COLUMN system boolean NOT NULL DEFAULT false;
UPDATE roles SET system = true WHERE name = 'scheduler';
-- A person given a system role before this fix loses it (it was an escalation).
DELETE FROM user_roles WHERE role IN (SELECT name FROM roles WHERE system);

CREATE FUNCTION user_roles_refuse_system() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM roles WHERE name = NEW.role AND system) THEN
        RAISE EXCEPTION 'the role % is a system role and cannot be granted to a person', NEW.role
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER user_roles_no_system BEFORE INSERT OR UPDATE ON user_roles
    FOR EACH ROW EXECUTE FUNCTION user_roles_refuse_system();

-- Expired pending actions are pruned by a periodic sweep.
CREATE INDEX pending_actions_expires ON pending_actions (expires_at);
