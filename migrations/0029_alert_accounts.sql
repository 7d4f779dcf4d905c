-- An alert's distinct accounts, one row each, written once when the account is new to the
-- alert. They were an array on the alert row, so every count on an alert from a source
-- trying many names (the shape of a real attack) rewrote up to 10,000 names. The row now
-- keeps what its message shows: how many accounts (`account_count`, a spray's count) and
-- the first few in byte order (`accounts`). No foreign key: alerts are never deleted, and
-- a key check per new account would cost more than the row it protects.
CREATE TABLE login_alert_accounts (
    alert_id bigint NOT NULL,
    account  text NOT NULL,
    PRIMARY KEY (alert_id, account)
);
INSERT INTO login_alert_accounts (alert_id, account)
    SELECT DISTINCT id, unnest(accounts) FROM login_alerts;

ALTER TABLE login_alerts ADD COLUMN account_count integer NOT NULL DEFAULT 0;
UPDATE login_alerts SET
    account_count = (SELECT count(DISTINCT x) FROM unnest(accounts) x),
    accounts = ARRAY(SELECT x FROM (SELECT DISTINCT x FROM unnest(accounts) x) d
                     ORDER BY x COLLATE "C" LIMIT 8)
WHERE cardinality(accounts) > 0;
