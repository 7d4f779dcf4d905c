-- WAL per appended audit row, random (v4) beside time-ordered (v7-shaped) request ids, at the
-- log's current size: `psql -d DB -f scripts/audit_wal_probe.sql` (superuser, for CHECKPOINT; it
-- appends 40,000 junk rows past the head, so only on a scratch database). Compare the two
-- "WAL:" lines (bytes / 20000 per row, fpi = full-page images).
\set QUIET on
CHECKPOINT;
EXPLAIN (ANALYZE, WAL, COSTS OFF, TIMING OFF, SUMMARY OFF)
INSERT INTO audit_log (seq, request_id, at, phase, actor_kind, command, args, decision, content_hash, prev_hash, row_hash)
SELECT (SELECT coalesce(max(seq),0) FROM audit_log) + i, gen_random_uuid()::text, now(), 'attempt', 'telegram', 'whoami', '', 'allowed', '\x00', '\x00', '\x00'
FROM generate_series(1, 20000) i;
CHECKPOINT;
EXPLAIN (ANALYZE, WAL, COSTS OFF, TIMING OFF, SUMMARY OFF)
INSERT INTO audit_log (seq, request_id, at, phase, actor_kind, command, args, decision, content_hash, prev_hash, row_hash)
SELECT (SELECT coalesce(max(seq),0) FROM audit_log) + i,
  substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-7' || substr(md5(i::text), 1, 3) || '-8' || substr(md5(i::text), 4, 3) || '-' || substr(md5(i::text), 7, 12),
  now(), 'attempt', 'telegram', 'whoami', '', 'allowed', '\x00', '\x00', '\x00'
FROM generate_series(1, 20000) i,
  LATERAL (SELECT lpad(to_hex((extract(epoch from clock_timestamp()) * 1000)::bigint * 1000 + i), 12, '0') AS h) t;
