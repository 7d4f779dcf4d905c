-- Events as real auth sources produce them: the source is an address or a host name (sshd's
-- `rhost` is often a name), and the account is optional (a pre-auth disconnect names none).
ALTER TABLE auth_events
    ALTER COLUMN ip DROP NOT NULL,
    ALTER COLUMN account DROP NOT NULL,
    ADD COLUMN host text CHECK (length(host) BETWEEN 1 AND 253),
    ADD CONSTRAINT auth_events_source CHECK (ip IS NOT NULL OR host IS NOT NULL);

-- An alert about a source that is a host name records it here (`ip` stays NULL).
ALTER TABLE login_alerts ADD COLUMN host text;

-- Alerts are episodes in event time: the first exceeding event (what cool-downs are measured
-- from, beside `last_at`), the highest window count, the distinct accounts seen (a spray's
-- count) and the other rules folded in. Alerts a late event showed to be one attack are
-- 'merged' into the earlier; an alert about a source that already has an open alert of
-- another rule is 'folded' into it (recorded, counted, never paged apart). Both point at
-- the alert that pages, `merged_into`.
ALTER TABLE login_alerts
    ADD COLUMN exceeding_from timestamptz,
    ADD COLUMN peak integer NOT NULL DEFAULT 0,
    ADD COLUMN accounts text[] NOT NULL DEFAULT '{}',
    ADD COLUMN rules text[] NOT NULL DEFAULT '{}',
    ADD COLUMN merged_into bigint REFERENCES login_alerts (id);
ALTER TABLE login_alerts DROP CONSTRAINT login_alerts_state_check;
ALTER TABLE login_alerts ADD CONSTRAINT login_alerts_state_check
    CHECK (state IN ('open', 'closed', 'merged', 'folded'));
CREATE INDEX login_alerts_rule_key ON login_alerts (rule, key, last_at);

-- An open alert nobody acknowledged within `escalate_after_secs` is pushed once more to the
-- escalation chats; this records that it was (once, across replicas).
ALTER TABLE login_alerts ADD COLUMN escalated_at timestamptz;
