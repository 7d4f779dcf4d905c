-- The secrets vault and its rotations. Values are AES-256-GCM ciphertexts under
-- OPSGUARD_MASTER_KEY (a fresh nonce per value; "<name>/<version>" as associated data), so
-- a value cannot be read without the key nor moved to another row.

-- One row: a known plaintext sealed with the master key the vault was created with. A
-- start-up whose key cannot open it stops before touching anything.
CREATE TABLE vault_keycheck (
    id         smallint PRIMARY KEY CHECK (id = 1),
    nonce      bytea NOT NULL,
    sealed     bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Versions of a managed secret, with the staging labels of AWS Secrets Manager.
CREATE TABLE secret_versions (
    secret      text NOT NULL CHECK (secret ~ '^[a-z0-9][a-z0-9_-]{0,47}$'),
    version     integer NOT NULL CHECK (version > 0),
    state       text NOT NULL CHECK (state IN ('pending', 'current', 'previous', 'revoked')),
    nonce       bytea NOT NULL,
    sealed      bytea NOT NULL,
    -- What may be shown or published: the role a password is for, a key id, a public key.
    public      jsonb NOT NULL DEFAULT '{}',
    fingerprint text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{8}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    promoted_at timestamptz,
    -- A previous version is revoked (its credential removed from the target) after this.
    retire_after timestamptz,
    revoked_at  timestamptz,
    PRIMARY KEY (secret, version)
);
CREATE UNIQUE INDEX secret_versions_one_current ON secret_versions (secret) WHERE state = 'current';
CREATE UNIQUE INDEX secret_versions_one_pending ON secret_versions (secret) WHERE state = 'pending';
CREATE INDEX secret_versions_to_retire ON secret_versions (retire_after) WHERE state = 'previous';

-- A rotation: four steps (create → set → test → finish), each recorded before and after it
-- runs. `step` is the step in hand; `step_done` says whether it completed. A rotation that
-- gives up is `rolling_back` until the pending value is off the target, then `rolled_back`.
CREATE TABLE rotations (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    secret       text NOT NULL,
    requested_by bigint,
    via          text NOT NULL CHECK (via IN ('command', 'schedule', 'shell')),
    status       text NOT NULL CHECK (status IN ('running', 'retrying', 'rolling_back', 'succeeded', 'failed', 'rolled_back')),
    step         text NOT NULL CHECK (step IN ('create', 'set', 'test', 'finish')),
    step_done    boolean NOT NULL DEFAULT false,
    version      integer,
    attempts     integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- A replica working on the rotation holds it until then; a crashed one's lease runs out
    -- and the next start or worker tick resumes the rotation.
    lease_until  timestamptz,
    error        text,
    started_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
-- One rotation per secret at a time.
CREATE UNIQUE INDEX rotations_one_active ON rotations (secret) WHERE status IN ('running', 'retrying', 'rolling_back');
CREATE INDEX rotations_latest ON rotations (secret, id DESC);

-- The scheduler may rotate (under each secret's own schedule policy).
INSERT INTO role_permissions (role, permission) VALUES ('scheduler', 'secrets.rotate');
