-- Record what became of a queued ticket, once: ordered, or rejected with its units given back.
-- Run after the worker's transaction committed; running it again changes nothing.
-- KEYS: 1 sale hash, 2 buyers hash, 3 ticket hash
-- ARGV: 1 'ordered' or 'rejected', 2 the order id (ordered) or the reason (rejected)
-- Returns the ticket's status after the call ('missing' when Redis no longer knows the ticket).
local sale, buyers, ticket = KEYS[1], KEYS[2], KEYS[3]
local outcome, detail = ARGV[1], ARGV[2]

local state = redis.call('HMGET', ticket, 'status', 'buyer_id', 'quantity')
if not state[1] then
  return 'missing'
end
if state[1] ~= 'queued' then
  return state[1]
end
local quantity = tonumber(state[3])
redis.call('HINCRBY', sale, 'queued_units', -quantity)
if outcome == 'ordered' then
  redis.call('HSET', ticket, 'status', 'ordered', 'order_id', detail)
else
  redis.call('HSET', ticket, 'status', 'rejected', 'reason', detail)
  redis.call('HINCRBY', sale, 'remaining', quantity)
  redis.call('HINCRBY', buyers, state[2], -quantity)
end
return outcome
