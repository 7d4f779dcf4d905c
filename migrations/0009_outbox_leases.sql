-- Outbox claims become leases: the claim commits at once (rows leased to one worker until
-- lease_until), and each row's result commits as soon as its own send finishes. A crash
-- then puts at most the row in flight at risk of a second send; an expired lease makes the
-- row claimable again.
ALTER TABLE outbox ADD COLUMN lease_until timestamptz;
