-- Spend several sliding-window-counter budgets of one request in one atomic step.
-- The algorithm and key layout are those of the `limits` library's sliding window counter, so
-- counts stay compatible with it: a current and a previous window per budget, the previous one
-- weighted by how much of it still overlaps the sliding window.
-- KEYS: per budget, 2 keys: the previous window's counter, then the current window's counter
-- ARGV: per budget, 3 values: quota, window in seconds, cost
-- Budgets are spent in order; the first one that cannot pay stops the request (the budgets
-- before it stay spent, as separate calls would leave them).
-- Returns {0} when every budget paid, else {index (1-based), previous count, previous ttl ms,
-- current count, current ttl ms} of the refusing budget, to compute its headers.
for index = 1, #KEYS / 2 do
  local previous_key, current_key = KEYS[index * 2 - 1], KEYS[index * 2]
  local limit = tonumber(ARGV[index * 3 - 2])
  local expiry = tonumber(ARGV[index * 3 - 1]) * 1000
  local amount = tonumber(ARGV[index * 3])

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
