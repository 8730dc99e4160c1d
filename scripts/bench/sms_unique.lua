-- wrk script: POST /v1/sms, each with an Idempotency-Key no other request uses.
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local n = 0
function request()
  n = n + 1
  local headers = {}
  for name, value in pairs(wrk.headers) do
    headers[name] = value
  end
  headers["Content-Type"] = "application/json"
  headers["Idempotency-Key"] = string.format("bench-%d-%d", tid, n)
  local body = string.format('{"to":"+1555%07d","body":"Tuesday at 9 works"}', n % 10000000)
  return wrk.format("POST", "/v1/sms", headers, body)
end
