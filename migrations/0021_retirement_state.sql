-- A retirement (a previous version's credential taken off the target once its grace period
-- is over, then the sessions opened with it ended) that fails is retried with the rotation
-- worker's backoff and alerted once, never on every tick: its attempts, last error and next
-- try are kept on the version. A credential that is off the target is `revoked` even while
-- its sessions could not be ended yet: those that started before `sessions_before` are
-- ended by the retry, and `sessions_ended_at` says when that was done.
ALTER TABLE secret_versions
    ADD COLUMN retire_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN retire_error text,
    ADD COLUMN retire_next_at timestamptz,
    ADD COLUMN sessions_before timestamptz,
    ADD COLUMN sessions_ended_at timestamptz;

CREATE INDEX secret_versions_sessions_pending ON secret_versions (retire_next_at)
    WHERE state = 'revoked' AND sessions_before IS NOT NULL AND sessions_ended_at IS NULL;
