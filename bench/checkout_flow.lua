-- A checkout per buyer, driven by wrk: run with as many threads as connections (wrk -tN -cN),
-- so each thread is one buyer on one connection and its requests follow each other:
--   mode "checkout": open the buyer's cart, add the item, place the order with a new key;
--   mode "retry": resend the buyer's finished order with its key (answered from storage).
-- Arguments after "--": mode, variant id, a prefix for this run's keys, the shipping address
-- as JSON. The file named by AGORA_BENCH_BUYERS holds one buyer a line: "token" for a
-- checkout, "token cart_id key" for a retry. done() prints the orders, the failures, the
-- seconds measured and each order's latency (from its first request to its answer).

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } agora_timespec;
int clock_gettime(int clock_id, agora_timespec *now);
]]
local CLOCK_MONOTONIC = 1
local clock = ffi.new("agora_timespec")

local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) + tonumber(clock.tv_nsec) * 1e-9
end

local threads, buyers = {}, {}

setup = function(thread)
  if #buyers == 0 then
    for line in io.lines(os.getenv("AGORA_BENCH_BUYERS")) do
      buyers[#buyers + 1] = line
    end
  end
  threads[#threads + 1] = thread
  thread:set("number", #threads)
  thread:set("buyer", buyers[(#threads - 1) % #buyers + 1])
end

-- Read back by done() through thread:get, so global in each thread's state.
orders, failures, latencies = 0, 0, {}

local mode, prefix, cart, key, address
local open_headers, json_headers, item_body
local step, sequence, started = 1, 0, 0

init = function(args)
  mode, prefix, address = args[1], args[3], args[4]
  local token
  token, cart, key = buyer:match("^(%S+)%s*(%S*)%s*(%S*)$")
  open_headers = { ["Authorization"] = "Bearer " .. token }
  json_headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
  item_body = '{"variant_id":"' .. args[2] .. '","quantity":1}'
end

local function order(idempotency_key)
  local headers = { ["Idempotency-Key"] = idempotency_key }
  for name, value in pairs(json_headers) do
    headers[name] = value
  end
  local body = '{"cart_id":"' .. cart .. '","shipping_address":' .. address .. '}'
  return wrk.format("POST", "/api/v1/orders", headers, body)
end

request = function()
  if mode == "retry" then
    started = now()
    return order(key)
  end
  if step == 1 then
    started = now()
    return wrk.format("POST", "/api/v1/carts", open_headers, "")
  elseif step == 2 then
    return wrk.format("POST", "/api/v1/carts/" .. cart .. "/items", json_headers, item_body)
  end
  sequence = sequence + 1
  return order(string.format("%s-%d-%d", prefix, number, sequence))
end

local function answered(placed)
  if placed then
    orders = orders + 1
    latencies[#latencies + 1] = now() - started
  else
    failures = failures + 1
  end
end

response = function(status, headers, body)
  if mode == "retry" or step == 3 then
    step = 1
    answered(status == 201)
  elseif step == 1 then
    -- 201 a new cart; 200 the buyer's cart left open by a checkout an earlier run cut short
    cart = (status == 201 or status == 200) and body:match('^{"id":"([%x%-]+)"')
    if cart then step = 2 else answered(false) end
  else
    if status == 201 then step = 3 else step = 1; answered(false) end
  end
end

done = function(summary, latency, requests)
  local placed, failed, all = 0, 0, {}
  for _, thread in ipairs(threads) do
    placed = placed + thread:get("orders")
    failed = failed + thread:get("failures")
    for _, seconds in ipairs(thread:get("latencies")) do
      all[#all + 1] = string.format("%.6f", seconds)
    end
  end
  local errors = summary.errors
  failed = failed + errors.connect + errors.read + errors.write + errors.timeout
  io.write(string.format("orders %d failures %d seconds %.6f\n", placed, failed,
    summary.duration / 1e6))
  io.write("latencies " .. table.concat(all, " ") .. "\n")
end
