-- Recreate a sale's Redis state from the database after Redis lost it; nothing if it exists.
-- Run while the caller holds the sale's row lock, so no ticket is ordered meanwhile.
-- KEYS: 1 sale hash, 2 buyers hash, 3.. the hash of each ticket whose units the sale took back
-- ARGV: 1 starts_at (epoch ms), 2 ends_at (epoch ms), 3 per-buyer limit, 4 quantity,
--       5 units left to sell, 6 the sale's public fields (JSON), 7 seconds to keep the state,
--       8 the new epoch, 9 whether the sale is closed ('1' or '0'), 10 how many buyers follow,
--       then a buyer id and the units they hold, for each buyer
-- Returns 1 when rebuilt now, 0 when the state existed.
local sale, buyers = KEYS[1], KEYS[2]
if redis.call('EXISTS', sale) == 1 then
  return 0
end
local ttl = tonumber(ARGV[7])
redis.call('DEL', buyers)
redis.call('HSET', sale, 'starts_at', ARGV[1], 'ends_at', ARGV[2], 'per_user_limit', ARGV[3],
  'quantity', ARGV[4], 'remaining', ARGV[5], 'queued_units', 0, 'is_closed', ARGV[9],
  'info', ARGV[6], 'epoch', ARGV[8])
redis.call('EXPIRE', sale, ttl)
local buyer_count = tonumber(ARGV[10])
for index = 1, buyer_count do
  redis.call('HSET', buyers, ARGV[9 + index * 2], ARGV[10 + index * 2])
end
if buyer_count > 0 then
  redis.call('EXPIRE', buyers, ttl)
end
-- Their units are already in 'remaining': replaying their release must change nothing.
for index = 3, #KEYS do
  redis.call('HSET', KEYS[index], 'units_returned', '1')
  redis.call('EXPIRE', KEYS[index], ttl)
end
return 1
