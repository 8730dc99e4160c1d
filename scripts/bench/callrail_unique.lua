-- wrk script: CallRail pre-call deliveries, each with a call id no other request uses.
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local n = 0
function request()
  n = n + 1
  local body = string.format(
    '{"company_id":"CRBENCH","call":{"id":"%d-%d"},"customer_phone_number":"+1555%07d",' ..
    '"customer_name":"Bench Caller","direction":"inbound","answered":true,"duration":60,"recording":null}',
    tid, n, n % 10000000)
  return wrk.format("POST", "/webhooks/callrail/pre-call", { ["Content-Type"] = "application/json" }, body)
end
