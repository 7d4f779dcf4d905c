-- The window exchange (see mod.rs): ONE call per batch. A rule's window state lives in one
-- hash per generation, `<prefix><rule>:<generation>`, a field per key. A generation is one
-- window long (on Redis's clock); a field not yet written in the current generation is read
-- from the previous one, so state outlives its last write by at least one window, as a
-- per-key PX would keep it, at a few calls per rule instead of one or two per key. The first
-- write of a generation UNLINKs the one before the previous (freed in the background, so a
-- big hash never stalls Redis); a TTL of three windows cleans up after a rule gone idle.
--
-- A key's state of 4 entries or more is two fields (a smaller one is one field holding its
-- entries, see SMALL): its *delta*, `v<version>|<n>|<entries>`, the `n` entries
-- written since its last fold (at most FOLD), and its *base*, field name + BASE, at
-- least its newest `cap` entries as of that fold. A write prepends to the delta; a caller
-- holding the key's state (its version matches) folds it, sending the new base, which is
-- stored as sent; else, once the delta would pass FOLD entries, both are folded here. So an
-- exchange moves each key's small delta, and Redis reads a base only to send it back or
-- fold it: reading, sorting and rewriting whole states of `cap` entries (256 and more) in
-- Lua cost ~70 us a key and more, the most of a 1,000-address attack's batch.
--
-- The version names the write (`<epoch>.<sequence>`, the sequence counted per call in
-- `<prefix>~seq`, so no two writes share one, even across a restart: the epoch changes). A
-- caller that sends the version it last wrote or read gets no state back for a key still at
-- that version: it holds that state already. A state of fewer than SMALL entries and no base
-- is written whole, without a version (no caller holds one so small); so is one written
-- before versions. Either is never the version a caller sends.
--
-- The epoch (`<prefix>~epoch`, Redis's time in ms when it was set) says since when this
-- Redis holds the windows: set when it is missing (a restarted or flushed Redis) or when the
-- caller saw an outage (mode 'r'). While it is younger than `span` the caller rebuilds the
-- keys not yet marked in `<prefix>~rebuilt:<epoch>` from the stored events (mode 'u').
--
-- ARGV[1]: the key prefix; ARGV[2]: the mode: 'x' exchange, 'r' new epoch then exchange,
-- 'u' union the given states in and mark the keys rebuilt in epoch ARGV[4] (none if '');
-- ARGV[3]: span (ms); ARGV[4]: for 'x'/'r' an epoch the caller knows needs no rebuild ('' none).
-- Then groups, each: rule, distinct ('1'/'0'), cap, window_ms, n, h; then n pairs (field;
-- new entries in the stored format, newest first, or '' (only reads)); then h pairs (a
-- field's position in the group, from 1; the version the caller holds its state at,
-- followed by `|<base>` when the caller folds: the new base in the stored format, taken
-- only if the version matches). A spread-out attack's caller holds few states: most of its
-- fields cost two arguments.
-- Returns for 'x'/'r': {epoch, young (0/1), found, marked, version}: found is (position,
-- previous state) for each field whose state the caller does not hold ('' for a field with
-- none that the caller held a version of), flat; positions count fields from 1 across
-- groups; marked lists the positions already rebuilt (only while young and not the known
-- epoch); version is the one this call wrote. A state sent back (delta then base, in the
-- stored format) holds at least the newest `cap` entries, maybe more, in no set order (the
-- reader sorts, de-duplicates and trims: `decode` in call.rs). For 'u': nothing.

-- New entries gathered in a key's delta before it is folded into its base here; a caller
-- that holds the state folds sooner, sending the base (sorted and trimmed by the caller).
local FOLD = 96

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
-- The newest `cap` of per-account latest lines (`by`, from `accounts`), in no order, ties at
-- the oldest time kept kept all (a state holds *at least* the newest `cap`: the reader
-- orders and trims). Sorted as numbers by Lua's own comparison, not by a Lua function.
local function newest_accounts(by, cap)
  local times = {}
  for i = 1, #by do times[i] = by[by[i]][1] end
  local kept = {}
  if #times <= cap then
    for i = 1, #by do kept[i] = by[by[i]][2] end
    return table.concat(kept, '\n')
  end
  table.sort(times)
  local oldest = times[#times - cap + 1]
  for i = 1, #by do
    local entry = by[by[i]]
    if entry[1] >= oldest then kept[#kept + 1] = entry[2] end
  end
  return table.concat(kept, '\n')
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
local function newest(s, distinct, cap)
  if distinct then return newest_accounts(accounts(s, {}), cap) end
  return newest_times(s, cap)
end
local function joined(a, b, sep)
  if a == '' then return b end
  if b == '' then return a end
  return a .. sep .. b
end

-- The union of two states (an entry in both counted once; equal times as often as the
-- state holding more of them has them), trimmed to the newest `cap`.
local function union(a, b, distinct, cap)
  if distinct then return newest_accounts(accounts(b, accounts(a, {})), cap) end
  local count = {}
  for _, s in ipairs({a, b}) do
    local here = {}
    for t in string.gmatch(s, '[^,]+') do here[t] = (here[t] or 0) + 1 end
    for t, n in pairs(here) do count[t] = math.max(count[t] or 0, n) end
  end
  local entries = {}
  for t, n in pairs(count) do
    for _ = 1, n do entries[#entries + 1] = t end
  end
  return newest_times(table.concat(entries, ','), cap)
end

-- How many entries `s` (in the stored format, separated by `sep`) holds.
local function entries(s, sep)
  if s == '' then return 0 end
  if not string.find(s, sep, 1, true) then return 1 end
  local _, seps = string.gsub(s, sep, sep)
  return seps + 1
end
-- A stored field `v<version>|<entries>|<delta>` as (version, entries in the delta, delta);
-- one without a version (a *small* state, below, or one written before versions) as ('',
-- its entries, itself): the whole state, no base.
local function parsed(stored, sep)
  if not stored then return nil, 0, '' end
  local version, n, rest = string.match(stored, '^v([^|]*)|(%d+)|()')
  if not version then return '', entries(stored, sep), stored end
  return version, tonumber(n), string.sub(stored, rest)
end
-- A state of fewer entries than this is written whole, without a version (no caller holds
-- one so small: `HOLD_FROM` in call.rs): most keys of an attack spread over many sources
-- never grow past it, and a version and a base for each cost Redis a third more per key.
local SMALL = 4

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
-- A key's base is the field of its name with this appended (no key holds a control character).
local BASE = '\1'
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
  local n, h = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  a = a + 6
  local sep = distinct and '\n' or ','
  local generation = math.floor(now_ms / window)
  local name = prefix .. rule .. ':'
  local current = name .. string.format('%.0f', generation)
  local fields = {}
  for i = 1, n do fields[i] = ARGV[a + 2 * i - 2] end
  -- The versions the caller holds, by position in the group (a spread-out attack: none).
  local holds, after = {}, a + 2 * n
  for j = 1, h do holds[tonumber(ARGV[after + 2 * j - 2])] = ARGV[after + 2 * j - 1] end
  -- Deltas (small) for every key; a base (up to `cap` entries) only where it is needed.
  local stored = redis.call('HMGET', current, unpack(fields))
  local carried, base, missing, at, m = {}, {}, {}, {}, 0
  for i = 1, n do
    if not stored[i] then
      m = m + 1
      at[m] = i
    end
  end
  if m > 0 then
    -- Not yet written in this generation: delta, then base, from the previous one.
    local old = name .. string.format('%.0f', generation - 1)
    for j = 1, m do missing[j] = fields[at[j]] end
    local got = redis.call('HMGET', old, unpack(missing))
    local there, c = {}, 0
    for j = 1, m do
      if got[j] then
        stored[at[j]] = got[j]
        carried[at[j]] = true
        c = c + 1
        there[c] = at[j]
      end
    end
    if c > 0 then
      local names = {}
      for j = 1, c do names[j] = fields[there[j]] .. BASE end
      local bases = redis.call('HMGET', old, unpack(names))
      for j = 1, c do base[there[j]] = bases[j] or '' end
    end
  end
  if check then
    local names = {}
    for i = 1, n do names[i] = rule .. ' ' .. fields[i] end
    local done = redis.call('HMGET', marks, unpack(names))
    for i = 1, n do
      if done[i] then marked[#marked + 1] = seen + i end
    end
  end
  -- Per key: its delta, and whether it is sent back (the caller does not hold its version)
  -- and whether it folds (its delta full, or a union); either needs the base.
  local delta, count, sent, folds, want, w = {}, {}, {}, {}, {}, 0
  local whole = {}
  local given = {}
  for i = 1, n do
    local new, held = ARGV[a + 2 * i - 1], holds[i] or ''
    -- A key with no state that the caller holds nothing of (most keys of a spread-out
    -- attack) needs nothing here.
    if stored[i] or held ~= '' then
      local bar = string.find(held, '|', 1, true)
      if bar then
        given[i] = string.sub(held, bar + 1)
        held = string.sub(held, 1, bar - 1)
      end
      local version
      version, count[i], delta[i] = parsed(stored[i], sep)
      whole[i] = version == ''
      if mode ~= 'u' and (stored[i] or held ~= '') and not (held ~= '' and version == held) then
        sent[i] = true
      end
      -- Keys fold at different fills (by their name's last bytes), so an attack's keys,
      -- written in step, do not all fold in the same call.
      if stored[i] and new ~= '' then
        local fill = FOLD - (string.byte(fields[i], -1) + (string.byte(fields[i], -2) or 0)) % 16
        folds[i] = mode == 'u' or count[i] + entries(new, sep) > fill
      end
      if (sent[i] or folds[i]) and stored[i] and not carried[i] then
        w = w + 1
        want[w] = i
      end
    end
  end
  if w > 0 then
    local names = {}
    for j = 1, w do names[j] = fields[want[j]] .. BASE end
    local got = redis.call('HMGET', current, unpack(names))
    for j = 1, w do base[want[j]] = got[j] or '' end
  end
  local store, s, rebuilt = {}, 0, {}
  for i = 1, n do
    local new = ARGV[a + 2 * i - 1]
    local previous = stored[i] and joined(delta[i], base[i] or '', sep)
    if sent[i] then
      f = f + 2
      found[f - 1] = seen + i
      found[f] = previous or ''
    end
    if new ~= '' and not stored[i] and mode ~= 'u' then
      -- A new key: its entries as sent, behind a version and their count; a small one as it is.
      local added = entries(new, sep)
      store[s + 1] = fields[i]
      store[s + 2] = added < SMALL and new or header .. added .. '|' .. new
      s = s + 2
    elseif new ~= '' then
      local added = entries(new, sep)
      local d, nd, b = delta[i], count[i], nil
      if mode == 'u' then
        d, nd, b = '', 0, union(previous or '', new, distinct, cap)
        rebuilt[#rebuilt + 1] = rule .. ' ' .. fields[i]
        rebuilt[#rebuilt + 1] = '1'
      elseif given[i] and not sent[i] then
        -- The caller holds this state and folded it with the new entries.
        d, nd, b = '', 0, given[i]
      elseif folds[i] then
        d, nd, b = '', 0, newest(joined(new, previous, sep), distinct, cap)
      else
        d, nd = joined(new, d, sep), count[i] + added
      end
      store[s + 1] = fields[i]
      if b or nd >= SMALL or not whole[i] then
        store[s + 2] = header .. nd .. '|' .. d
      else
        -- Still small and without a base: whole, as it is.
        store[s + 2] = d
      end
      s = s + 2
      if b or (carried[i] and base[i] ~= '') then
        store[s + 1] = fields[i] .. BASE
        store[s + 2] = b or base[i]
        s = s + 2
      end
    end
  end
  seen = seen + n
  a = a + 2 * n + 2 * h
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
