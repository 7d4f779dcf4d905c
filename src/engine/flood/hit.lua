-- One Telegram update against its flood limits, atomically, on the server's clock.
-- KEYS[1..n]: the limits' sliding windows; KEYS[n+1..2n]: their subjects' drop tallies;
-- KEYS[2n+1]: the sorted set of tallies by the time their window ends.
-- ARGV[1]: window ms; ARGV[2]: a nonce; then per limit: max, subject, actor id, chat id.
-- Returns 0 (admitted: a hit counted in every window) or i (dropped by limit i: its
-- subject's tally counted; no window changed).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local n = (#KEYS - 1) / 2
for i = 1, n do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local a = 2 + (i - 1) * 4
  if redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[a + 1]) then
    local tally = KEYS[n + i]
    if redis.call('HINCRBY', tally, 'n', 1) == 1 then
      redis.call('HSET', tally, 'actor', ARGV[a + 3], 'chat', ARGV[a + 4])
      redis.call('ZADD', KEYS[2 * n + 1], 'NX', now + window, ARGV[a + 2])
    end
    -- A safety net only: a replica claims the tally within a second of its window's end.
    redis.call('PEXPIRE', tally, window * 4 + 3600000)
    return i
  end
end
for i = 1, n do
  redis.call('ZADD', KEYS[i], now, now .. '-' .. ARGV[2])
  redis.call('PEXPIRE', KEYS[i], window)
end
return 0
