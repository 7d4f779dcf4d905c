-- Issue 14: two-person approval that reaches the approver. Each approval request is pushed
-- (through the outbox) to every other admin who may decide it, with Approve / Deny buttons
-- bound to that admin; the requester is told how it ended, also when it expired.

-- An approval request that expired undecided is marked so by the sweep that tells its
-- requester (once: the sweep claims the row with a conditional update). A request that was
-- approved but could not run ends as failed.
ALTER TABLE pending_actions DROP CONSTRAINT pending_actions_status_check;
ALTER TABLE pending_actions ADD CONSTRAINT pending_actions_status_check
    CHECK (status IN ('pending', 'confirmed', 'cancelled', 'approved', 'denied', 'completed',
                      'expired', 'failed'));
-- Requests that expired before this version: nobody is told about them now.
UPDATE pending_actions SET status = 'expired', used_at = expires_at
    WHERE kind = 'approval' AND status = 'pending' AND used_at IS NULL AND expires_at <= now();
CREATE INDEX pending_actions_open_approvals ON pending_actions (expires_at)
    WHERE kind = 'approval' AND status = 'pending' AND used_at IS NULL;

-- One row per approver a request was pushed to. `id` is the opaque callback data of that
-- approver's buttons (130 random bits): a press counts only from `approver`, in `chat_id`
-- (their private chat), while the request is open. `outbox_id` is the pushed message, edited
-- when the request is decided or expires.
CREATE TABLE approval_notices (
    id          text PRIMARY KEY,
    approval_id text NOT NULL REFERENCES pending_actions (id) ON DELETE CASCADE,
    approver    bigint NOT NULL,
    chat_id     bigint NOT NULL,
    outbox_id   bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX approval_notices_approval ON approval_notices (approval_id);
