-- ARGV: prefix, breaker threshold, breaker cooldown ms, the acknowledging crawler's id, 1 to
-- free the leases' host slots (0: a lease call frees them, as its ended fetches), then one
-- record per URL, packed (see unpack_records): id, token, host (as its lease named it),
-- outcome, wait ms, urgency 0-100, validators "etag \t last_modified".
-- Outcomes:
--   changed / same / notmod  fetched (200 with a change, 200 without, 304): the recrawl interval
--                            halves or grows by half within the host's bounds
--   retry    429/503: the host pauses for wait ms (Retry-After), the URL is due after it
--   error    timeout, connection or 5xx: counts towards the host's circuit breaker
--   skip     not to fetch now (robots.txt disallows it, 4xx): due again after the longest interval
--   defer    the lease was spent on robots.txt: the URL is due again at once
--   release  held ahead but never fetched (its crawler stopped first, or it was held for half
--            the lease TTL): due again at once
--   later    a redirect's target host kept its gate closed for longer than the fetch could
--            wait: the URL is due again after wait ms, and its own host is not blamed
-- An ack whose token is not the URL's current lease (it expired and was handed out again) is
-- ignored. Returns how many acks were applied.
local now = now_ms()
local threshold = tonumber(ARGV[2])
local cooldown = tonumber(ARGV[3])
local owner = ARGV[4]
local free_slots = ARGV[5] == '1'
local applied = 0

local fetched_now = 0
local hosts = {}

-- The host's bounds and counters, read once and written once per call.
local function host_state(host)
  local state = hosts[host]
  if not state then
    local h = redis.call('HMGET', P .. 'host:' .. host, 'min', 'max')
    state = {min = num(h[1], 3600), max = num(h[2], 86400), leased = 0, fetched = 0, notmod = 0}
    hosts[host] = state
  end
  return state
end

local function interval_after(state, meta, outcome)
  local interval = tonumber(string.match(meta, '^([%d.]+)')) or state.min
  if outcome == 'changed' then
    interval = interval / 2
  elseif meta ~= '' then
    interval = interval * 1.5
  end
  return math.min(state.max, math.max(state.min, interval))
end

local fetched_at = '\t' .. now .. '\t'

local function fetched(id, meta, state, outcome, urgency, validators, metas)
  local interval = interval_after(state, meta, outcome)
  metas[#metas + 1] = id
  metas[#metas + 1] = interval .. fetched_at .. validators
  state.fetched = state.fetched + 1
  if outcome == 'notmod' then
    state.notmod = state.notmod + 1
  end
  fetched_now = fetched_now + 1
  return now + math.floor(interval * 1000 * (1 - urgency / 200))
end

local function failed(hkey)
  redis.call('HINCRBY', hkey, 'errors', 1)
  local fails = redis.call('HINCRBY', hkey, 'fails', 1)
  if fails >= threshold then
    local open = now + cooldown * 2 ^ math.min(fails - threshold, 6)
    redis.call('HSET', hkey, 'open', open)
    return open
  end
  return now + cooldown * fails / threshold
end

-- The current leases among the records, read in two calls whatever their number: their
-- scores (the lease tokens), then the meta entries of those that are current.
local records = unpack_records(ARGV[6])
local ids = {}
for i, record in ipairs(records) do
  ids[i] = record[1]
end
local scores = call_many('ZMSCORE', P .. 'leases', ids)
local current, seen = {}, {}
for i, record in ipairs(records) do
  if not seen[record[1]] and num(scores[i], -1) == tonumber(record[2]) then
    seen[record[1]] = true
    current[#current + 1] = record
  end
end
ids = {}
for i, record in ipairs(current) do
  ids[i] = record[1]
end
local metas = call_many('HMGET', P .. 'meta', ids)

-- Each URL's next due time, gathered by host, and its new meta entry when it was fetched: written
-- in one call per host and key.
local queued, ended, fetched_metas = {}, {}, {}
for i, record in ipairs(current) do
  local id, host, outcome = record[1], record[3], record[4]
  local wait, urgency, validators = tonumber(record[5]), tonumber(record[6]), record[7]
  local state = host_state(host)
  local due = now
  state.leased = state.leased + 1
  if outcome == 'changed' or outcome == 'same' or outcome == 'notmod' then
    due = fetched(id, metas[i] or '', state, outcome, urgency, validators, fetched_metas)
  elseif outcome == 'retry' then
    due = now + wait
    redis.call('HSET', P .. 'host:' .. host, 'pause', due)
    failed(P .. 'host:' .. host)
  elseif outcome == 'error' then
    due = failed(P .. 'host:' .. host)
  elseif outcome == 'skip' then
    due = now + state.max * 1000
  elseif outcome == 'later' then
    due = now + wait
  end
  if not queued[host] then
    queued[host], ended[host] = {}, {}
  end
  local scored = queued[host]
  scored[#scored + 1] = due
  scored[#scored + 1] = id
  ended[host][#ended[host] + 1] = id
  applied = applied + 1
end
if applied > 0 then
  call_many('ZREM', P .. 'leases', ids)
  call_many('HSET', P .. 'meta', fetched_metas)
end
for host, scored in pairs(queued) do
  if free_slots then
    call_many('ZREM', P .. 'hold:' .. host, ended[host])
    call_many('ZREM', P .. 'mine:' .. owner .. ':' .. host, ended[host])
  end
  call_many('ZADD', P .. 'q:' .. host, scored)
end
for host, state in pairs(hosts) do
  local hkey = P .. 'host:' .. host
  redis.call('HINCRBY', hkey, 'leased', -state.leased)
  if state.fetched > 0 then
    redis.call('HINCRBY', hkey, 'fetched', state.fetched)
    redis.call('HINCRBY', hkey, 'notmod', state.notmod)
    redis.call('HSET', hkey, 'fails', 0)
  end
  reschedule(host, now, threshold)
end
if fetched_now > 0 then
  local bucket = P .. 'rate:' .. math.floor(now / 1000)
  redis.call('INCRBY', bucket, fetched_now)
  redis.call('EXPIRE', bucket, 120)
end
return applied
