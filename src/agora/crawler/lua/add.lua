-- ARGV: prefix, breaker threshold, default delay ms, max concurrency, recrawl min s, max s,
-- then (id, url, host, urgency 0-100) per URL. A URL already known is left as it is.
-- Returns how many URLs were new.
local now = now_ms()
local threshold = tonumber(ARGV[2])
local added = 0
local touched = {}
for i = 7, #ARGV, 4 do
  local id, url, host = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('HSETNX', P .. 'url', id, url) == 1 then
    ensure_host(host, ARGV[3], ARGV[4], ARGV[5], ARGV[6])
    redis.call('ZADD', P .. 'q:' .. host, now - tonumber(ARGV[i + 3]), id)
    touched[host] = true
    added = added + 1
  end
end
for host in pairs(touched) do
  reschedule(host, now, threshold)
end
return added
