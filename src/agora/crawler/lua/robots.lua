-- ARGV: prefix, breaker threshold, host, robots.txt body (or '' when unreachable),
-- TTL ms, Crawl-delay ms, pause ms (robots.txt unreachable or 5xx: the host waits), start margin ms.
-- Keeps the host's robots.txt for the TTL and its Crawl-delay, and pushes its next allowed
-- start out by that delay, so the start after the robots.txt fetch already honours it.
local now = now_ms()
local threshold = tonumber(ARGV[2])
local host, body = ARGV[3], ARGV[4]
local ttl, rdelay, pause = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local margin = tonumber(ARGV[8])
local hkey = P .. 'host:' .. host
if pause > 0 then
  redis.call('HSET', hkey, 'pause', now + pause)
else
  redis.call('SET', P .. 'robots:' .. host, body, 'PX', ttl)
  redis.call('HSET', hkey, 'rdelay', rdelay)
  local h = redis.call('HMGET', hkey, 'next', 'delay')
  local delay = math.max(num(h[2], 0), rdelay)
  if delay > 0 then
    redis.call('HSET', hkey, 'next', math.max(num(h[1], 0), now + delay + margin))
  end
end
reschedule(host, now, threshold)
return 1
