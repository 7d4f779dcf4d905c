-- The window exchange (see mod.rs): ONE call per batch. A rule's window state lives in one
-- hash per generation, `<prefix><rule>:<generation>`, a field per key. A generation is one
-- window long (on Redis's clock); a field not yet written in the current generation is read
-- from the previous one, so state outlives its last write by at least one window, as a
-- per-key PX would keep it, at a few calls per rule instead of one or two per key. The first
-- write of a generation UNLINKs the one before the previous (freed in the background, so a
-- big hash never stalls Redis); a TTL of three windows cleans up after a rule gone idle.
--
-- A field is `v<version>|<state>`: the version names the write (`<epoch>.<sequence>`, the
-- sequence counted per call in `<prefix>~seq`, so no two writes share one, even across a
-- restart: the epoch changes). A caller that sends the version it last wrote or read gets
-- no state back for a key still at that version: it holds that state already, so a call
-- costs what is new, not what is kept. (A field without `v` is one written before versions:
-- never the version a caller sends.)
--
-- The epoch (`<prefix>~epoch`, Redis's time in ms when it was set) says since when this
-- Redis holds the windows: set when it is missing (a restarted or flushed Redis) or when the
-- caller saw an outage (mode 'r'). While it is younger than `span` the caller rebuilds the
-- keys not yet marked in `<prefix>~rebuilt:<epoch>` from the stored events (mode 'u').
--
-- ARGV[1]: the key prefix; ARGV[2]: the mode: 'x' exchange, 'r' new epoch then exchange,
-- 'u' union the given states in and mark the keys rebuilt in epoch ARGV[4] (none if '');
-- ARGV[3]: span (ms); ARGV[4]: for 'x'/'r' an epoch the caller knows needs no rebuild ('' none).
-- Then groups, each: rule, distinct ('1'/'0'), cap, window_ms, n; then n triples (field, new
-- entries in the stored format, newest first, '' only reads; the version the caller holds
-- the state at, '' none).
-- Returns for 'x'/'r': {epoch, young (0/1), found, marked, version}: found is (position,
-- previous state) for each field whose state the caller does not hold ('' for a field with
-- none that the caller held a version of), flat; positions count fields from 1 across
-- groups; marked lists the positions already rebuilt (only while young and not the known
-- epoch); version is the one this call wrote. A state holds at least the newest `cap`
-- entries, maybe more. For 'u': nothing.

local function accounts(s, into)
  for line in string.gmatch(s, '[^\n]+') do
    local t, account = string.match(line, '^(%-?%d+):(.*)$')
    local n = tonumber(t)
    local seen = into[account]
    if not seen then
      into[account] = {n, line}
      into[#into + 1] = account
    elseif n > seen[1] then
      seen[1] = n
      seen[2] = line
    end
  end
  return into
end
local function newest(entries, cap, sep)
  table.sort(entries, function(x, y)
    if x[1] ~= y[1] then return x[1] > y[1] end
    return x[2] > y[2]
  end)
  local kept = {}
  for i = 1, math.min(cap, #entries) do kept[i] = entries[i][2] end
  return table.concat(kept, sep)
end
-- The newest `cap` event times of `s` (`t,t,…`), newest first: sorted as numbers by Lua's
-- own comparison (an event time is an integer in ms, written back as it was read).
local function newest_times(s, cap)
  local times = {}
  for t in string.gmatch(s, '[^,]+') do times[#times + 1] = tonumber(t) end
  table.sort(times)
  local kept, n = {}, #times
  for i = 1, math.min(cap, n) do kept[i] = string.format('%.0f', times[n - i + 1]) end
  return table.concat(kept, ',')
end
-- What to store for a key that had state: the new entries put in front of it (no parsing;
-- the reader sorts, de-duplicates and trims, see `decode` in mod.rs) while it holds about
-- half as many entries again as `cap`; past that, merged and trimmed to the newest `cap`
-- here. Every exchange moves a key's whole state (read, rewritten, returned), so a bound in
-- entries, not bytes, keeps a long attack from few sources as cheap per event as a young one
-- (a bound of `cap` * 64 bytes let an address's state grow to ~1,170 times, 4.5 x `cap`).
local function merged(previous, new, distinct, cap)
  local sep = distinct and '\n' or ','
  local joined = new .. sep .. previous
  -- Entries counted by bytes, at the new entries' own average length (counting the whole
  -- state's separators would cost another copy of it on every exchange); and never more
  -- than `cap` * 64 bytes, whatever the entries' length (long account names).
  local _, seps = string.gsub(new, sep, sep)
  if #joined * (seps + 1) < (cap + math.floor(cap / 2)) * (#new + 1)
      and #joined < cap * 64 then
    return joined
  end
  if distinct then
    local by = accounts(joined, {})
    local entries = {}
    for i = 1, #by do entries[i] = by[by[i]] end
    return newest(entries, cap, '\n')
  end
  return newest_times(joined, cap)
end

-- The union of two states (an entry in both counted once; equal times as often as the
-- state holding more of them has them), trimmed to the newest `cap`.
local function union(a, b, distinct, cap)
  if distinct then
    local by = accounts(b, accounts(a, {}))
    local entries = {}
    for i = 1, #by do entries[i] = by[by[i]] end
    return newest(entries, cap, '\n')
  end
  local count, order = {}, {}
  for _, s in ipairs({a, b}) do
    local here = {}
    for t in string.gmatch(s, '[^,]+') do here[t] = (here[t] or 0) + 1 end
    for t, n in pairs(here) do
      if not count[t] then order[#order + 1] = t end
      count[t] = math.max(count[t] or 0, n)
    end
  end
  local entries = {}
  for _, t in ipairs(order) do
    for _ = 1, count[t] do entries[#entries + 1] = {tonumber(t), t} end
  end
  return newest(entries, cap, ',')
end

local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local prefix, mode, span = ARGV[1], ARGV[2], tonumber(ARGV[3])
local marker = prefix .. '~epoch'
local epoch = redis.call('GET', marker)
if mode == 'r' or not epoch then
  epoch = string.format('%.0f', now_ms)
  redis.call('SET', marker, epoch)
end
local version = epoch .. '.' .. redis.call('INCR', prefix .. '~seq')
local header = 'v' .. version .. '|'
local young = now_ms - tonumber(epoch) < span
local marks = prefix .. '~rebuilt:' .. epoch
-- Whether to look up or set the rebuilt marks.
local check = young and mode ~= 'u' and epoch ~= ARGV[4]
local mark = mode == 'u' and epoch == ARGV[4]
local found, f, marked = {}, 0, {}
local a, seen, argc = 5, 0, #ARGV
while a <= argc do
  local rule, distinct = ARGV[a], ARGV[a + 1] == '1'
  local cap, window = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local n = tonumber(ARGV[a + 4])
  a = a + 5
  local generation = math.floor(now_ms / window)
  local name = prefix .. rule .. ':'
  local current = name .. string.format('%.0f', generation)
  local fields = {}
  for i = 1, n do fields[i] = ARGV[a + 3 * i - 3] end
  local states = redis.call('HMGET', current, unpack(fields))
  local missing, at, m = {}, {}, 0
  for i = 1, n do
    if not states[i] then
      m = m + 1
      missing[m] = fields[i]
      at[m] = i
    end
  end
  if m > 0 then
    local old = redis.call('HMGET', name .. string.format('%.0f', generation - 1), unpack(missing))
    for j = 1, m do states[at[j]] = old[j] end
  end
  if check then
    local names = {}
    for i = 1, n do names[i] = rule .. ' ' .. fields[i] end
    local done = redis.call('HMGET', marks, unpack(names))
    for i = 1, n do
      if done[i] then marked[#marked + 1] = seen + i end
    end
  end
  local store, s, rebuilt = {}, 0, {}
  for i = 1, n do
    local new, stored = ARGV[a + 3 * i - 2], states[i]
    local held = ARGV[a + 3 * i - 1]
    -- The stored state without its version, and whether the caller holds it.
    local previous, current_held = stored, false
    if stored and string.byte(stored, 1) == 118 then -- 'v'
      local bar = string.find(stored, '|', 2, true)
      current_held = held ~= '' and string.sub(stored, 2, bar - 1) == held
      previous = string.sub(stored, bar + 1)
    end
    if mode ~= 'u' and not current_held and (previous or held ~= '') then
      f = f + 2
      found[f - 1] = seen + i
      found[f] = previous or ''
    end
    if new ~= '' then
      store[s + 1] = fields[i]
      if mode == 'u' then
        store[s + 2] = header .. union(previous or '', new, distinct, cap)
        rebuilt[#rebuilt + 1] = rule .. ' ' .. fields[i]
        rebuilt[#rebuilt + 1] = '1'
      else
        store[s + 2] = header .. (previous and merged(previous, new, distinct, cap) or new)
      end
      s = s + 2
    end
  end
  seen = seen + n
  a = a + 3 * n
  if s > 0 then
    redis.call('HSET', current, unpack(store))
    if redis.call('PTTL', current) == -1 then
      redis.call('PEXPIREAT', current, string.format('%.0f', (generation + 3) * window))
      redis.call('UNLINK', name .. string.format('%.0f', generation - 2))
    end
  end
  if mark and #rebuilt > 0 then
    redis.call('HSET', marks, unpack(rebuilt))
    redis.call('PEXPIRE', marks, span)
  end
end
if mode == 'u' then return {} end
return {epoch, young and 1 or 0, found, marked, version}
