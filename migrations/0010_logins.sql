-- Failed-login alerting: ingested auth events, alerts raised by detection rules, silences,
-- chat-bound buttons for pushed alerts, and the permission to prune old events.

CREATE TABLE auth_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The sender's id for idempotency (optional); unique per sender, so one service can
    -- never claim (and so hide) another's ids.
    event_id    text CHECK (length(event_id) <= 128),
    at          timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    ip          inet NOT NULL,
    account     text NOT NULL,
    service     text NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('failure', 'success', 'locked')),
    reason      text,
    user_agent  text,
    -- Who sent it: the token's `sub`, or `stream` for the Redis stream.
    sender      text NOT NULL
);
CREATE UNIQUE INDEX auth_events_event_id ON auth_events (sender, event_id) WHERE event_id IS NOT NULL;
-- Rows arrive in time order, so a BRIN index serves time ranges at a fraction of the
-- cost of a b-tree on every insert.
CREATE INDEX auth_events_at ON auth_events USING brin (at) WITH (pages_per_range = 32);

-- One row per alert. While an alert is open, further matches update it (count, last_at)
-- instead of raising a new one; it closes when its key has been quiet for the cool-down.
CREATE TABLE login_alerts (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule      text NOT NULL,
    -- What the rule counts by: `ip:<addr>`, `account:<name>`, `spray:<addr>` or `all`.
    key       text NOT NULL,
    ip        inet,
    account   text,
    count     bigint NOT NULL,
    first_at  timestamptz NOT NULL,
    last_at   timestamptz NOT NULL,
    fired_at  timestamptz NOT NULL DEFAULT now(),
    state     text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed')),
    acked_by  bigint,
    acked_at  timestamptz,
    -- Raised while a silence matched: recorded, listed, not pushed.
    silenced  boolean NOT NULL DEFAULT false,
    -- The outbox row that pushed it (NULL when silenced or no chat is configured).
    outbox_id bigint
);
CREATE UNIQUE INDEX login_alerts_open ON login_alerts (rule, key) WHERE state = 'open';
CREATE INDEX login_alerts_recent ON login_alerts (last_at DESC);

-- A silence matches a rule name or an alert key until it expires.
CREATE TABLE login_silences (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    matcher    text NOT NULL CHECK (length(matcher) BETWEEN 1 AND 300),
    until      timestamptz NOT NULL,
    created_by bigint,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_silences_until ON login_silences (until);

-- Buttons on a pushed alert belong to the chat it went to, not to one user: whoever
-- presses runs the stored command through the pipeline under their own permissions.
ALTER TABLE pending_actions DROP CONSTRAINT pending_actions_kind_check;
ALTER TABLE pending_actions ADD CONSTRAINT pending_actions_kind_check
    CHECK (kind IN ('confirm', 'stepup', 'approval', 'chat'));

INSERT INTO role_permissions (role, permission) VALUES
    ('admin', 'logins.prune'), ('scheduler', 'logins.prune');
