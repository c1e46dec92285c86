-- Shared by every frontier script (prepended to each one). ARGV[1] is the key prefix.
-- Keys, all under the prefix:
--   url           hash   id -> URL text (the only place a URL's text is kept)
--   q:<host>      zset   id -> due time (ms), for URLs not leased
--   leases        zset   id -> lease expiry (ms), the lease's token
--   hold:<host>   zset   id -> lease expiry (ms), fetches of the host in flight (a request no
--                        lease covers holds a slot under a token of its own: see enter.lua)
--   host:<host>   hash   policy (delay, rdelay, maxc, min, max) and state (next, pause, open,
--                        fails, leased) and counters (fetched, notmod, errors)
--   hosts         zset   host -> the time it may next give a URL (absent: nothing to give)
--   crawlers      zset   crawler id -> until when it counts as live (it leased within a TTL)
--   mine:<crawler>:<host>  zset  id -> lease expiry, the host's slots that crawler holds
--   meta          hash   id -> "interval_s \t fetched_ms \t etag \t last_modified"
--   robots:<host> string the host's robots.txt, kept for the robots TTL
local P = ARGV[1]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function host_of(url)
  return string.match(url, '^[%a][%w+.-]*://([^/?#]+)')
end

-- Records the crawler packs into one argument (one string costs it far less to send than many):
-- each is an 8-byte URL id, then its fields separated by byte 31, ended by byte 30 (the id may
-- hold any byte; the fields hold neither of those two).
local function unpack_records(packed)
  local find, sub = string.find, string.sub
  local records, count, pos = {}, 0, 1
  while pos <= #packed do
    local stop = find(packed, '\30', pos + 8, true)
    local record, from = {sub(packed, pos, pos + 7)}, pos + 8
    -- plain searches for the separators: no pattern, and no copy of the record's text
    while true do
      local sep = find(packed, '\31', from, true)
      if not sep or sep > stop then
        record[#record + 1] = sub(packed, from, stop - 1)
        break
      end
      record[#record + 1] = sub(packed, from, sep - 1)
      from = sep + 1
    end
    count = count + 1
    records[count] = record
    pos = stop + 1
  end
  return records
end

-- Call a command on one key with many arguments, a thousand at a time (Lua's unpack is bounded);
-- returns the replies in order (each a list, for ZMSCORE and HMGET).
local function call_many(command, key, args)
  if #args == 0 then
    return {}
  elseif #args <= 1000 then
    -- one call: its reply as it is
    local reply = redis.call(command, key, unpack(args))
    return type(reply) == 'table' and reply or {}
  end
  local replies = {}
  for first = 1, #args, 1000 do
    local reply = redis.call(command, key, unpack(args, first, math.min(first + 999, #args)))
    if type(reply) == 'table' then
      for _, value in ipairs(reply) do
        replies[#replies + 1] = value
      end
    end
  end
  return replies
end

local function num(value, default)
  if value then
    return tonumber(value)
  end
  return default
end

-- Give a host seen for the first time the default policy, and list it among the known hosts.
local function ensure_host(host, delay, maxc, min, max)
  local hkey = P .. 'host:' .. host
  if redis.call('EXISTS', hkey) == 0 then
    redis.call('HSET', hkey, 'delay', delay, 'maxc', maxc, 'min', min, 'max', max)
    redis.call('SADD', P .. 'known', host)
  end
end

-- How many fetches the host may have in flight: one while its robots.txt is unknown or its
-- circuit is half open, its max_concurrency otherwise.
local function concurrency_limit(host, maxc, fails, threshold)
  if fails >= threshold or redis.call('EXISTS', P .. 'robots:' .. host) == 0 then
    return 1
  end
  return maxc
end

-- Put the host in the ready set at the time it may next give a URL, or take it out when it
-- cannot until a fetch of it ends or a URL is added.
local function reschedule(host, now, threshold)
  local first = redis.call('ZRANGE', P .. 'q:' .. host, 0, 0, 'WITHSCORES')
  if #first == 0 then
    redis.call('ZREM', P .. 'hosts', host)
    return
  end
  local h = redis.call('HMGET', P .. 'host:' .. host, 'next', 'pause', 'open', 'maxc', 'fails')
  local holders = redis.call('ZCOUNT', P .. 'hold:' .. host, now, '+inf')
  if holders >= concurrency_limit(host, num(h[4], 1), num(h[5], 0), threshold) then
    redis.call('ZREM', P .. 'hosts', host)
    return
  end
  local ready = math.max(tonumber(first[2]), num(h[1], 0), num(h[2], 0), num(h[3], 0))
  redis.call('ZADD', P .. 'hosts', ready, host)
end

-- Take a leased URL out of the lease set and its host's fetches in flight.
local function end_lease(id, host)
  redis.call('ZREM', P .. 'leases', id)
  redis.call('ZREM', P .. 'hold:' .. host, id)
  redis.call('HINCRBY', P .. 'host:' .. host, 'leased', -1)
end
