-- ARGV: prefix, breaker threshold, how many URLs wanted, lease TTL ms, start margin ms,
-- then (id, token) of fetches that just ended, whose hosts' slots are freed first.
-- Expired leases go back to their queue (due now) before anything is handed out. A host gives
-- a URL only when its gate is open: fewer fetches in flight than its limit, its next allowed
-- start reached, not paused (Retry-After, robots.txt unreachable) and its circuit not open.
-- Hosts are served round-robin, in passes, until enough URLs are granted.
-- Returns {wait_ms, id1, url1, token1, meta1, held1, id2, ...}; wait_ms is when a host is next
-- ready (-1: none is); held is how long (ms) the URL, due, waited for its host's gate to open
-- (next allowed start, pause, open circuit): the politeness wait.
local now = now_ms()
local threshold = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local margin = tonumber(ARGV[5])

for i = 6, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local url = redis.call('HGET', P .. 'url', id)
  if url and num(redis.call('ZSCORE', P .. 'hold:' .. host_of(url), id), -1) == tonumber(token) then
    redis.call('ZREM', P .. 'hold:' .. host_of(url), id)
    reschedule(host_of(url), now, threshold)
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

local out = {-1}
local granted = 0
-- Grant what the host's gate allows now: with a delay, one URL; without, as many as it has
-- slots free. Returns whether the host may give more in this call.
local function grant(host)
  local hkey = P .. 'host:' .. host
  local h = redis.call('HMGET', hkey, 'delay', 'rdelay', 'next', 'pause', 'open', 'maxc', 'fails')
  local opened = math.max(num(h[3], 0), num(h[4], 0), num(h[5], 0))
  if now < opened then
    return false
  end
  local holders = redis.call('ZCOUNT', P .. 'hold:' .. host, now, '+inf')
  local free = concurrency_limit(host, num(h[6], 1), num(h[7], 0), threshold) - holders
  local delay = math.max(num(h[1], 0), num(h[2], 0))
  if delay > 0 then
    free = math.min(free, 1)
  end
  free = math.min(free, wanted - granted, 1000)
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
  redis.call('ZADD', P .. 'hold:' .. host, unpack(scored))
  redis.call('HINCRBY', hkey, 'leased', #ids)
  if delay > 0 then
    redis.call('HSET', hkey, 'next', now + delay + margin)
  end
  local urls = redis.call('HMGET', P .. 'url', unpack(ids))
  local metas = redis.call('HMGET', P .. 'meta', unpack(ids))
  for i, id in ipairs(ids) do
    out[#out + 1] = id
    out[#out + 1] = urls[i]
    out[#out + 1] = tostring(expiry)
    out[#out + 1] = metas[i] or ''
    out[#out + 1] = held[i]
  end
  granted = granted + #ids
  return delay == 0 and #ids == free
end

local ready = redis.call('ZRANGEBYSCORE', P .. 'hosts', '-inf', now, 'LIMIT', 0, wanted)
while granted < wanted and #ready > 0 do
  local again = {}
  for _, host in ipairs(ready) do
    if granted < wanted and grant(host) then
      again[#again + 1] = host
    end
  end
  ready = again
end
for _, host in ipairs(redis.call('ZRANGEBYSCORE', P .. 'hosts', '-inf', now, 'LIMIT', 0, wanted)) do
  reschedule(host, now, threshold)
end

local first = redis.call('ZRANGE', P .. 'hosts', 0, 0, 'WITHSCORES')
if #first > 0 then
  out[1] = math.max(0, tonumber(first[2]) - now)
end
return out
