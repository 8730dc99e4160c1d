-- wrk script: appointment bookings that never conflict: request g of the run books rep
-- (g % 200) + 1 for lead (g % 20000) + 1 at hour g / 200 after 2027-01-01 (30 minutes each).
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

wrk.headers["Content-Type"] = "application/json"

local n = 0
local base = 1798761600 -- 2027-01-01T00:00:00Z
function request()
  n = n + 1
  local g = n * 2 + tid
  local rep = g % 200 + 1
  local lead = g % 20000 + 1
  local starts = base + math.floor(g / 200) * 3600
  local body = string.format(
    '{"lead_id":"00000000-0000-4000-9000-%012d","rep_id":"00000000-0000-4000-8000-%012d",' ..
    '"starts_at":"%s","ends_at":"%s","title":"Bench visit"}',
    lead, rep, os.date("!%Y-%m-%dT%H:%M:%SZ", starts), os.date("!%Y-%m-%dT%H:%M:%SZ", starts + 1800))
  -- nil headers: wrk's own (Host and the command line's Authorization) plus the type set below.
  return wrk.format("POST", "/v1/appointments", nil, body)
end
