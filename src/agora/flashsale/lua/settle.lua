-- Record what became of queued tickets, once each: ordered, or rejected with their units given
-- back; then acknowledge and drop their queue entries, in the same atomic step (an entry is
-- never dropped while its ticket is unsettled).
-- Run after the worker's transaction committed; running it again changes nothing.
-- KEYS: 1 sale hash, 2 buyers hash, 3 ticket queue (stream), 4.. one ticket hash per ticket
-- ARGV: 1 the consumer group, then per ticket 3 values: 'ordered' or 'rejected' ('' to settle
--       nothing, for a ticket Redis forgot), the order id (ordered) or the reason (rejected),
--       and the queue entry id to acknowledge ('' for none)
-- Returns each ticket's status after the call ('missing' when Redis no longer knows it).
local sale, buyers, queue, group = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
local statuses = {}

for index = 4, #KEYS do
  local ticket = KEYS[index]
  local base = (index - 4) * 3 + 1
  local outcome, detail, entry = ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]
  local state = redis.call('HMGET', ticket, 'status', 'buyer_id', 'quantity')
  local status = state[1] or 'missing'
  if status == 'queued' and outcome ~= '' then
    local quantity = tonumber(state[3])
    redis.call('HINCRBY', sale, 'queued_units', -quantity)
    if outcome == 'ordered' then
      redis.call('HSET', ticket, 'status', 'ordered', 'order_id', detail)
    else
      redis.call('HSET', ticket, 'status', 'rejected', 'reason', detail)
      redis.call('HINCRBY', sale, 'remaining', quantity)
      redis.call('HINCRBY', buyers, state[2], -quantity)
    end
    status = outcome
  end
  if entry ~= '' then
    redis.call('XACK', queue, group, entry)
    redis.call('XDEL', queue, entry)
  end
  statuses[#statuses + 1] = status
end
return statuses
