-- Claim the drop tallies whose window has ended (at most 200), on the server's clock:
-- each is removed as it is returned, so exactly one replica reports it.
-- KEYS[1]: the sorted set of tallies by window end; ARGV[1]: the tally key prefix.
-- Returns a flat list: subject, count, actor id, chat id, …
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 200)
local out = {}
for _, subject in ipairs(due) do
  redis.call('ZREM', KEYS[1], subject)
  local key = ARGV[1] .. subject
  local v = redis.call('HMGET', key, 'n', 'actor', 'chat')
  redis.call('DEL', key)
  if v[1] then
    table.insert(out, subject)
    table.insert(out, v[1])
    table.insert(out, v[2] or '')
    table.insert(out, v[3] or '')
  end
end
return out
