-- The scheduler: one row per (schedule, fire time), inserted to claim the run before it
-- starts. The primary key makes the claim exactly-once across replicas: the INSERT that
-- loses the race (ON CONFLICT DO NOTHING) runs nothing.
CREATE TABLE schedule_runs (
    schedule    text NOT NULL,
    fire_at     timestamptz NOT NULL,
    -- Which replica claimed it (pid and a per-process id).
    claimed_by  text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    -- NULL while running (or if the process died mid-run: such a run is not repeated).
    finished_at timestamptz,
    -- The request id of the run: its audit rows carry the same id.
    request_id  text,
    -- The pipeline's decision (allowed, denied, pending, ...) and a short outcome text.
    decision    text,
    result      text,
    -- The report queued for the chat, if any.
    outbox_id   bigint,
    PRIMARY KEY (schedule, fire_at)
);

-- The scheduler's own role (an actor with no user acts under it): read permissions plus
-- running checks and backups and reading the audit log. Grant more as data, deliberately.
INSERT INTO roles (name, description) VALUES
    ('scheduler', 'scheduled runs: read, run checks, trigger backups, read and verify the audit log');
INSERT INTO role_permissions (role, permission) VALUES
    ('scheduler', 'help'), ('scheduler', 'whoami'), ('scheduler', 'status'),
    ('scheduler', 'findings.read'), ('scheduler', 'logins.read'), ('scheduler', 'alerts.read'),
    ('scheduler', 'backups.read'), ('scheduler', 'secrets.read'), ('scheduler', 'schedules.read'),
    ('scheduler', 'checks.run'), ('scheduler', 'backups.run'), ('scheduler', 'audit.read');

-- `/schedules` lists the schedules: viewer and up.
INSERT INTO role_permissions (role, permission) VALUES
    ('viewer', 'schedules.read'), ('operator', 'schedules.read'), ('admin', 'schedules.read');
