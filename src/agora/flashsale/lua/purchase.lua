-- The whole decision of a flash-sale purchase, in one atomic step.
-- Checks the window, the buyer's units against the per-buyer limit and the units left; if all
-- pass, takes the units, records the ticket (with the state's epoch: a ticket sold by a state
-- since rebuilt is refused by the database) and queues it for the worker.
-- KEYS: 1 sale hash, 2 buyers hash (buyer id -> units held), 3 ticket queue (stream),
--       4 ticket hash, 5 idempotency hash of (buyer, Idempotency-Key), 6 the wake flag (set
--       while a worker has been asked to drain the queue)
-- ARGV: 1 buyer id, 2 quantity, 3 new ticket id, 4 request fingerprint ('' without a key),
--       5 seconds to keep the ticket after the sale ends, 6 seconds to keep the idempotency key
-- ARGV: 7 milliseconds the wake flag lives (a lost drain is asked again after that),
--       8 the shipping address as JSON ('' without one), kept with the ticket for its order
-- KEYS 7.., ARGV 9.. (optional): the request's rate-limit budgets and token epoch, as
--       core/lua/ratelimit.lua takes them; spent first by ``spend_budgets`` (that script as a
--       function, which ledger.py puts before this one), so the purchase is one round trip
-- Returns {outcome, detail, wake}: accepted/replayed + ticket id, or a refusal + a number;
-- wake is '1' when the caller should ask a worker to drain the queue (nobody was asked yet);
-- or {'budget_refused', <the rate-limit script's answer>} when a budget or the token refused.
local sale, buyers, queue, ticket, idempotency = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local wake_flag = KEYS[6]
local buyer, quantity, ticket_id = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local fingerprint, keep_after_end, key_ttl = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])

if #ARGV > 8 then
  local spent = spend_budgets({unpack(KEYS, 7)}, {unpack(ARGV, 9)})
  if spent[1] ~= 0 then
    return {'budget_refused', unpack(spent)}
  end
end

if redis.call('EXISTS', sale) == 0 then
  return {'not_found', ''}
end
if fingerprint ~= '' then
  local previous = redis.call('HMGET', idempotency, 'ticket_id', 'fingerprint')
  if previous[1] then
    if previous[2] == fingerprint then
      return {'replayed', previous[1]}
    end
    return {'idempotency_key_reused', ''}
  end
end

local sale_state = redis.call(
  'HMGET', sale, 'starts_at', 'ends_at', 'per_user_limit', 'remaining', 'is_closed', 'epoch')
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
if now < tonumber(sale_state[1]) then
  return {'not_started', sale_state[1]}
end
if now >= tonumber(sale_state[2]) or sale_state[5] == '1' then
  return {'ended', sale_state[2]}
end
local held = tonumber(redis.call('HGET', buyers, buyer) or '0')
if held + quantity > tonumber(sale_state[3]) then
  return {'limit_reached', tostring(held)}
end
local remaining = tonumber(sale_state[4])
if remaining < quantity then
  return {'sold_out', tostring(remaining)}
end

redis.call('HINCRBY', sale, 'remaining', -quantity)
redis.call('HINCRBY', sale, 'queued_units', quantity)
redis.call('HINCRBY', buyers, buyer, quantity)
redis.call('HSET', ticket, 'buyer_id', buyer, 'quantity', quantity, 'status', 'queued',
  'epoch', sale_state[6] or '0')
if ARGV[8] ~= '' then
  redis.call('HSET', ticket, 'shipping_address', ARGV[8])
end
redis.call('EXPIRE', ticket, math.floor((tonumber(sale_state[2]) - now) / 1000) + keep_after_end)
redis.call('XADD', queue, '*', 'ticket_id', ticket_id)
if fingerprint ~= '' then
  redis.call('HSET', idempotency, 'ticket_id', ticket_id, 'fingerprint', fingerprint)
  redis.call('EXPIRE', idempotency, key_ttl)
end
local wake = redis.call('SET', wake_flag, '1', 'NX', 'PX', tonumber(ARGV[7]))
return {'accepted', ticket_id, wake and '1' or '0'}
