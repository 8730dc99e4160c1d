-- Widget turns over many conversations: each wrk thread walks its own slice of the session ids
-- in SESSIONS_FILE, so two connections rarely share a conversation (its lock would serialise
-- them). WIDGET_KEY names the company.
local counter = 0
function setup(thread)
  thread:set("offset", counter)
  counter = counter + 1
end

function init(args)
  sessions = {}
  for line in io.lines(os.getenv("SESSIONS_FILE")) do
    sessions[#sessions + 1] = line
  end
  key = os.getenv("WIDGET_KEY")
  i = offset * math.floor(#sessions / 2)
end

function request()
  i = i + 1
  local id = sessions[(i % #sessions) + 1]
  return wrk.format("POST", "/v1/widget/sessions/" .. id .. "/messages",
    { ["Content-Type"] = "application/json", ["X-Widget-Key"] = key },
    '{"text":"my furnace is making a noise"}')
end
