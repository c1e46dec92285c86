-- ARGV: prefix, breaker threshold, URLs wanted for idle fetchers, URLs more to hold ahead (only
-- of hosts without a delay), lease TTL ms, start margin ms, the leasing crawler's id, then
-- records (id, token, host) of fetches that just ended, packed (see unpack_records), whose
-- hosts' slots are freed first (the host as the lease named it: no URL to read back).
-- The crawler is counted live for a lease TTL (crawlers, scored by when that ends); while
-- several are, a host gives one crawler at most ceil(its limit / live crawlers) slots
-- (mine:<crawler>:<host>), so one cannot hold every slot of a host while others starve.
-- Expired leases go back to their queue (due now) before anything is handed out. A host gives
-- a URL only when its gate is open: fewer fetches in flight than its limit, its next allowed
-- start reached, not paused (Retry-After, robots.txt unreachable) and its circuit not open.
-- Hosts are served round-robin, in passes, until enough URLs are granted; a host with a delay
-- only ever gives a URL for an idle fetcher (its start is timed from the grant), and goes
-- first.
-- Returns {wait_ms, passed, then per host's grant: host, token, flags, count, then count times
-- id, url, meta, held}; wait_ms is when a host is next ready (-1: none is); passed is 1 when a
-- host with a delay was ready but no fetcher idle; the token is the grant's lease expiry; flags:
-- 1 the host has a delay (start it now), 2 this grant took the last slot its host gives this
-- crawler (free it as soon as the fetch ends); held is how long (ms) the URL, due, waited for its
-- host's gate to open (next allowed start, pause, open circuit): the politeness wait. What a
-- grant's URLs share is sent once: each item of the reply costs Redis and the crawler alike.
local now = now_ms()
local threshold = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local extra = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local margin = tonumber(ARGV[6])
local owner = ARGV[7]

local crawlers = P .. 'crawlers'
redis.call('ZADD', crawlers, now + ttl, owner)
redis.call('ZREMRANGEBYSCORE', crawlers, '-inf', now)
local live = redis.call('ZCARD', crawlers)

-- The ended fetches' slots, by host: a few calls per host, whatever their number.
local by_host = {}
for _, record in ipairs(unpack_records(ARGV[8])) do
  local host = record[3]
  by_host[host] = by_host[host] or {ids = {}, tokens = {}}
  local slots = by_host[host]
  slots.ids[#slots.ids + 1] = record[1]
  slots.tokens[#slots.tokens + 1] = tonumber(record[2])
end
for host, slots in pairs(by_host) do
  local held = call_many('ZMSCORE', P .. 'hold:' .. host, slots.ids)
  local freed = {}
  for i, id in ipairs(slots.ids) do
    if num(held[i], -1) == slots.tokens[i] then
      freed[#freed + 1] = id
    end
  end
  if #freed > 0 then
    call_many('ZREM', P .. 'hold:' .. host, freed)
    call_many('ZREM', P .. 'mine:' .. owner .. ':' .. host, freed)
    reschedule(host, now, threshold)
  end
end

-- An expired lease's URL goes back to the head of its queue: what a dead crawler held has
-- waited longest, and is fetched first.
local expired = redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(expired) do
  local host = host_of(redis.call('HGET', P .. 'url', id))
  end_lease(id, host)
  redis.call('ZADD', P .. 'q:' .. host, 0, id)
  reschedule(host, now, threshold)
end

local out = {-1, 0}
local granted = 0
-- Grant what the host's gate allows now: with a delay, one URL for an idle fetcher; without, as
-- many as it has slots free (this crawler's share of them). Returns whether the host may give
-- more in this call.
local function grant(host, h)
  local hkey = P .. 'host:' .. host
  local opened = math.max(num(h[3], 0), num(h[4], 0), num(h[5], 0))
  if now < opened then
    return false
  end
  local delay = math.max(num(h[1], 0), num(h[2], 0))
  local budget = wanted + extra - granted
  if delay > 0 then
    if granted >= wanted then
      if redis.call('ZCOUNT', P .. 'q:' .. host, '-inf', now) > 0 then
        out[2] = 1
      end
      return false
    end
    budget = 1
  end
  local limit = concurrency_limit(host, num(h[6], 1), num(h[7], 0), threshold)
  local hold = P .. 'hold:' .. host
  local holders = redis.call('ZCOUNT', hold, now, '+inf')
  local mine = P .. 'mine:' .. owner .. ':' .. host
  local free = limit - holders
  if live > 1 then
    redis.call('ZREMRANGEBYSCORE', mine, '-inf', now)
    free = math.min(free, math.ceil(limit / live) - redis.call('ZCARD', mine))
  end
  local last = free
  free = math.min(free, budget, 1000)
  if free <= 0 then
    return false
  end
  local due = redis.call('ZRANGEBYSCORE', P .. 'q:' .. host, '-inf', now, 'WITHSCORES', 'LIMIT', 0, free)
  if #due == 0 then
    return false
  end
  local expiry = now + ttl
  local ids, held, scored = {}, {}, {}
  for i = 1, #due, 2 do
    local n = (i + 1) / 2
    ids[n] = due[i]
    -- an expired lease is back at score 0: it waited for its crawler, not for the gate
    local since = tonumber(due[i + 1])
    held[n] = since > 0 and math.max(0, opened - since) or 0
    scored[2 * n - 1] = expiry
    scored[2 * n] = due[i]
  end
  redis.call('ZREM', P .. 'q:' .. host, unpack(ids))
  redis.call('ZADD', P .. 'leases', unpack(scored))
  redis.call('ZADD', hold, unpack(scored))
  redis.call('ZADD', mine, unpack(scored))
  redis.call('PEXPIRE', mine, ttl)
  redis.call('HINCRBY', hkey, 'leased', #ids)
  if delay > 0 then
    redis.call('HSET', hkey, 'next', now + delay + margin)
  end
  local flags = delay > 0 and 1 or 0
  if #ids >= last then
    flags = flags + 2
  end
  local urls = redis.call('HMGET', P .. 'url', unpack(ids))
  local metas = redis.call('HMGET', P .. 'meta', unpack(ids))
  local n = #out
  out[n + 1], out[n + 2], out[n + 3], out[n + 4] = host, tostring(expiry), flags, #ids
  n = n + 4
  for i, id in ipairs(ids) do
    out[n + 1], out[n + 2], out[n + 3], out[n + 4] = id, urls[i], metas[i] or '', held[i]
    n = n + 4
  end
  granted = granted + #ids
  return delay == 0 and #ids == free
end

-- Hosts with a delay first: each gives one URL at most, to an idle fetcher.
local function policies(hosts)
  local delayed, others = {}, {}
  for _, host in ipairs(hosts) do
    local h = redis.call('HMGET', P .. 'host:' .. host, 'delay', 'rdelay', 'next', 'pause', 'open', 'maxc', 'fails')
    local entry = {host, h}
    if math.max(num(h[1], 0), num(h[2], 0)) > 0 then
      delayed[#delayed + 1] = entry
    else
      others[#others + 1] = entry
    end
  end
  for _, entry in ipairs(others) do
    delayed[#delayed + 1] = entry
  end
  return delayed
end

local ready = policies(redis.call('ZRANGEBYSCORE', P .. 'hosts', '-inf', now, 'LIMIT', 0, wanted + extra))
while granted < wanted + extra and #ready > 0 do
  local again = {}
  for _, entry in ipairs(ready) do
    if granted < wanted + extra and grant(entry[1], entry[2]) then
      again[#again + 1] = entry
    end
  end
  ready = again
end
for _, host in ipairs(redis.call('ZRANGEBYSCORE', P .. 'hosts', '-inf', now, 'LIMIT', 0, wanted + extra)) do
  reschedule(host, now, threshold)
end

local first = redis.call('ZRANGE', P .. 'hosts', 0, 0, 'WITHSCORES')
if #first > 0 then
  out[1] = math.max(0, tonumber(first[2]) - now)
end
return out
