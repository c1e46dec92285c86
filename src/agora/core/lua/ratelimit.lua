-- Spend several sliding-window-counter budgets of one request in one atomic step, after checking
-- that the request's access token was not revoked (core/sessions.py).
-- The algorithm and key layout are those of the `limits` library's sliding window counter, so
-- counts stay compatible with it: a current and a previous window per budget, the previous one
-- weighted by how much of it still overlaps the sliding window.
-- ARGV[1]: the access token's epoch, or '' when the request carries no token
-- KEYS: the token owner's epoch key first when ARGV[1] is not '', then per budget 2 keys: the
-- previous window's counter, then the current window's counter
-- ARGV[2..]: per budget, 3 values: quota, window in seconds, cost
-- Budgets are spent in order; the first one that cannot pay stops the request (the budgets
-- before it stay spent, as separate calls would leave them).
-- Returns {-1} when the token was revoked (nothing is spent), {0} when every budget paid, else
-- {index (1-based), previous count, previous ttl ms, current count, current ttl ms} of the
-- refusing budget, to compute its headers.
local first_key = 1
if ARGV[1] ~= '' then
  local current_epoch = tonumber(redis.call('GET', KEYS[1]) or '0')
  if current_epoch > tonumber(ARGV[1]) then
    return {-1}
  end
  first_key = 2
end
for index = 1, (#KEYS - first_key + 1) / 2 do
  local previous_key = KEYS[first_key + index * 2 - 2]
  local current_key = KEYS[first_key + index * 2 - 1]
  local limit = tonumber(ARGV[index * 3 - 1])
  local expiry = tonumber(ARGV[index * 3]) * 1000
  local amount = tonumber(ARGV[index * 3 + 1])

  local current_ttl = tonumber(redis.call('PTTL', current_key))
  if current_ttl > 0 and current_ttl < expiry then
    -- The current window is over: it becomes the previous one.
    redis.call('RENAME', current_key, previous_key)
    redis.call('SET', current_key, 0, 'PX', current_ttl + expiry)
  end
  local previous_count = tonumber(redis.call('GET', previous_key)) or 0
  local previous_ttl = math.max(0, tonumber(redis.call('PTTL', previous_key)) or 0)
  local current_count = tonumber(redis.call('GET', current_key)) or 0
  current_ttl = math.max(0, tonumber(redis.call('PTTL', current_key)) or 0)
  local weighted = math.floor(previous_count * previous_ttl / expiry) + current_count

  if amount > limit or weighted + amount > limit then
    return {index, previous_count, previous_ttl, current_count, current_ttl}
  end
  if redis.call('EXISTS', current_key) == 1 then
    redis.call('INCRBY', current_key, amount)
  else
    redis.call('SET', current_key, amount, 'PX', expiry * 2)
  end
end
return {0}
