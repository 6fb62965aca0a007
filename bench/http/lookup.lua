-- wrk script: GET one random order of the preloaded ones per request.
local keys = tonumber(os.getenv("KEYS") or "1000000")
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/stores/orders/keys/o-" .. math.random(0, keys - 1))
end
