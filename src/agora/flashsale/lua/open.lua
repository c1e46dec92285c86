-- Create a sale's Redis state unless it exists; running it twice changes nothing.
-- KEYS: 1 sale hash
-- ARGV: 1 starts_at (epoch ms), 2 ends_at (epoch ms), 3 per-buyer limit, 4 quantity,
--       5 units left to sell, 6 the sale's public fields (JSON), 7 seconds to keep the state,
--       8 the state's epoch (the sale row's ``state_epoch``, copied onto each ticket)
-- Returns 1 when created now, 0 when it existed.
local sale = KEYS[1]
if redis.call('EXISTS', sale) == 1 then
  return 0
end
redis.call('HSET', sale, 'starts_at', ARGV[1], 'ends_at', ARGV[2], 'per_user_limit', ARGV[3],
  'quantity', ARGV[4], 'remaining', ARGV[5], 'queued_units', 0, 'is_closed', 0, 'info', ARGV[6],
  'epoch', ARGV[8])
redis.call('EXPIRE', sale, tonumber(ARGV[7]))
return 1
