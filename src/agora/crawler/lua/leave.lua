-- ARGV: prefix, breaker threshold, host, token.
-- Frees the slot a request let through by enter.lua held, so a lease or another request may
-- have it.
redis.call('ZREM', P .. 'hold:' .. ARGV[3], ARGV[4])
reschedule(ARGV[3], now_ms(), tonumber(ARGV[2]))
return 1
