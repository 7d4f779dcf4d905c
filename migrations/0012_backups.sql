-- Backups (issue 6): a job queue any replica can work (claimed with FOR UPDATE SKIP LOCKED,
-- held by a lease that the running replica renews), and the catalogue of what was stored.

CREATE TABLE backup_jobs (
    id            bigserial PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('backup', 'restore_test')),
    target        text NOT NULL,
    -- The backup a restore test reads (NULL for a backup job).
    backup_id     bigint,
    status        text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    requested_by  bigint,
    via           text NOT NULL,
    -- The chat that gets the progress message and the result (0: none).
    chat_id       bigint NOT NULL DEFAULT 0,
    -- The outbox row of the progress message, which later rows edit.
    progress_row  bigint,
    lease_until   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    error         text,
    -- A restore test's scratch database (unique per run: servers may be shared).
    scratch_db    text,
    CHECK ((kind = 'backup') = (backup_id IS NULL))
);
-- One backup of a target at a time: a second request finds the first one's id.
CREATE UNIQUE INDEX backup_jobs_one_per_target ON backup_jobs (target)
    WHERE kind = 'backup' AND status IN ('queued', 'running');
CREATE INDEX backup_jobs_due ON backup_jobs (id) WHERE status IN ('queued', 'running');

-- The catalogue. A backup is 'good' only once the whole object is stored and its checksum,
-- read back from storage, matched.
CREATE TABLE backups (
    id              bigserial PRIMARY KEY,
    job_id          bigint NOT NULL REFERENCES backup_jobs (id),
    target          text NOT NULL,
    status          text NOT NULL DEFAULT 'writing'
                    CHECK (status IN ('writing', 'good', 'failed', 'deleted')),
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    -- Bytes pg_dump wrote, and bytes stored (compressed and encrypted).
    dump_bytes      bigint,
    stored_bytes    bigint,
    sha256          text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    -- Where it is: the storage (a directory or s3://bucket/prefix) and the key within it.
    storage         text NOT NULL,
    storage_key     text NOT NULL,
    pg_dump_version text,
    server_version  text,
    -- {"schema.table": rows} counted in the snapshot pg_dump read.
    table_counts    jsonb NOT NULL DEFAULT '{}',
    error           text,
    deleted_at      timestamptz,
    -- The latest restore test: when it finished and whether it passed.
    verified_at     timestamptz,
    verified_ok     boolean,
    verify_error    text
);
CREATE INDEX backups_target ON backups (target, id DESC);

-- Progress messages are edited in place: a row with edit_of is sent as editMessageText of
-- the message that row delivered (message_id, recorded when it was sent).
ALTER TABLE outbox ADD COLUMN message_id bigint;
ALTER TABLE outbox ADD COLUMN edit_of bigint REFERENCES outbox (id) ON DELETE CASCADE;
CREATE INDEX outbox_edit_of ON outbox (edit_of) WHERE edit_of IS NOT NULL;

-- Pruning removes stored backups: admin and the scheduler only. Restore tests run weekly
-- as the scheduler.
INSERT INTO role_permissions (role, permission) VALUES
    ('admin', 'backups.prune'), ('scheduler', 'backups.prune'),
    ('scheduler', 'backups.restore_test');
