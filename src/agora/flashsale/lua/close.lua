-- Stop a sale for good, once no ticket is waiting for the worker.
-- KEYS: 1 sale hash
-- Returns 'closed' (now or before), 'busy' while tickets are queued, 'missing' without state.
local sale = KEYS[1]

local state = redis.call('HMGET', sale, 'is_closed', 'queued_units')
if not state[2] then
  return 'missing'
end
if state[1] == '1' then
  return 'closed'
end
if tonumber(state[2]) > 0 then
  return 'busy'
end
redis.call('HSET', sale, 'is_closed', '1', 'remaining', '0')
return 'closed'
