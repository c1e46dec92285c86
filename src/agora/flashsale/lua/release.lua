-- Give the units of a cancelled sale order back to the sale, once per ticket.
-- Run after the database took the units back; running it again changes nothing.
-- KEYS: 1 sale hash, 2 buyers hash, 3 ticket hash
-- ARGV: 1 buyer id, 2 quantity, 3 seconds to keep the ticket
-- Returns 1 when the units were given back now, 0 when they already were.
local sale, buyers, ticket = KEYS[1], KEYS[2], KEYS[3]
local buyer, quantity, ticket_ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])

-- Without the sale's state (Redis lost it), nothing: its rebuild counts these units.
if redis.call('EXISTS', sale) == 0 then
  return 0
end
if redis.call('HSETNX', ticket, 'units_returned', '1') == 0 then
  return 0
end
redis.call('EXPIRE', ticket, ticket_ttl)
redis.call('HINCRBY', sale, 'remaining', quantity)
redis.call('HINCRBY', buyers, buyer, -quantity)
return 1
