-- Issue 20: detection window epochs, and the permission to manage dead letters from chat.

-- Detection windows across Redis failures (issue 20). Redis holds the sliding windows; each
-- time it is found to have lost them (a restart, a flush: its epoch marker is gone) or an
-- outage of it ended, a new epoch begins there and is recorded here. An epoch with one
-- before it has its windows rebuilt from the stored events (`auth_events`, the truth) as
-- keys are touched; the very first epoch needs none: nothing was counted before it.
CREATE TABLE login_window_epochs (
    epoch_ms bigint PRIMARY KEY,
    seen_at  timestamptz NOT NULL DEFAULT now()
);

-- Dead letters from chat (issue 20): `/outbox` lists them, `/outbox retry [id…]` re-sends.
INSERT INTO role_permissions (role, permission) VALUES ('admin', 'outbox.manage');
