-- The outbox: every push to Telegram that is not a direct reply (scheduled reports, alerts)
-- is written here first and delivered by a worker, so nothing is lost while Telegram or
-- the process is down.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    chat_id      bigint NOT NULL,
    -- HTML parse-mode text; untrusted parts are escaped before they get here.
    html         text NOT NULL,
    -- Inline buttons as [{"label": "...", "data": "..."}].
    buttons      jsonb NOT NULL DEFAULT '[]',
    -- Where it came from, for /status and debugging (e.g. 'schedule:daily-checks').
    source       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- Not to be sent before this (backoff, Telegram's retry_after, per-chat pacing).
    not_before   timestamptz NOT NULL DEFAULT now(),
    attempts     int NOT NULL DEFAULT 0,
    last_error   text,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
    sent_at      timestamptz
);
CREATE INDEX outbox_due ON outbox (not_before, id) WHERE status = 'pending';
CREATE INDEX outbox_chat ON outbox (chat_id, id) WHERE status = 'pending';
