-- ARGV: prefix, breaker threshold, host, token ('' for a start without a slot), slot TTL ms,
-- start margin ms, then the default policy (delay ms, max concurrency, recrawl min s, max s)
-- given to a host not known yet.
-- Lets one request that no lease covers through the host's gate: a redirect hop to the host, a
-- sitemap read for staff. The gate must be open as for a lease (next allowed start reached, not
-- paused, circuit not open, a slot free); the request then holds a slot of hold:<host> under its
-- token until it leaves (leave.lua) or, should its process die, until the TTL; and the next
-- allowed start moves by the delay. A token of '' takes a start but no slot: a redirect back to
-- the host whose slot the request already holds.
-- Returns 0 when let through, else ms until the gate may open (-1: when a slot is freed).
local now = now_ms()
local threshold = tonumber(ARGV[2])
local host, token = ARGV[3], ARGV[4]
local ttl, margin = tonumber(ARGV[5]), tonumber(ARGV[6])
local hkey = P .. 'host:' .. host
ensure_host(host, ARGV[7], ARGV[8], ARGV[9], ARGV[10])
local h = redis.call('HMGET', hkey, 'delay', 'rdelay', 'next', 'pause', 'open', 'maxc', 'fails')
local opens = math.max(num(h[3], 0), num(h[4], 0), num(h[5], 0))
if now < opens then
  return opens - now
end
if token ~= '' then
  local hold = P .. 'hold:' .. host
  -- slots whose holder died; an expired lease among them is ended by lease.lua as before
  redis.call('ZREMRANGEBYSCORE', hold, '-inf', now - 1)
  if redis.call('ZCARD', hold) >= concurrency_limit(host, num(h[6], 1), num(h[7], 0), threshold) then
    return -1
  end
  redis.call('ZADD', hold, now + ttl, token)
end
local delay = math.max(num(h[1], 0), num(h[2], 0))
if delay > 0 then
  redis.call('HSET', hkey, 'next', now + delay + margin)
end
reschedule(host, now, threshold)
return 0
