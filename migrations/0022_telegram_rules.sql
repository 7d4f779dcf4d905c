-- Telegram's own rules, kept by every road out.
--
-- direct_sends: the messages sent as direct replies (bot::send, not through the outbox), so
-- that replies and outbox pushes share the per-chat, per-group and overall limits. A row
-- may be dated a moment ahead: a reply reserves its slot before it waits for it. Rows
-- older than a few minutes mean nothing and are deleted as new ones come.
CREATE TABLE direct_sends (
    chat_id bigint NOT NULL,
    sent_at timestamptz NOT NULL
);
CREATE INDEX direct_sends_chat_at ON direct_sends (chat_id, sent_at);

-- menu_pending: users whose command menu Telegram refused (a user added before they first
-- opened the bot: "chat not found"). Their menu is set again when they next write.
CREATE TABLE menu_pending (
    user_id   bigint PRIMARY KEY,
    error     text NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now()
);

-- chat_moves: groups Telegram upgraded to supergroups (a push answered "group chat was
-- upgraded to a supergroup chat" with migrate_to_chat_id). What is queued for the old id
-- from now on (a configured alert chat, say) goes to the new one.
CREATE TABLE chat_moves (
    old_id   bigint PRIMARY KEY,
    new_id   bigint NOT NULL,
    moved_at timestamptz NOT NULL DEFAULT now()
);
