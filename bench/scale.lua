-- wrk script for the scale runs: POSTs the Outlook request (request.xml) for addresses spread
-- over the seeded customer domains, so a large directory is really looked up all over.
--   BENCH_DOMAINS  how many customerNNNNNNN.example domains are seeded (numbered from 0)
--   REQUEST_XML    the request template; its user@alpha.example is replaced per request
-- Each wrk thread builds 1024 requests once (in init) and cycles through them, so the cost on
-- wrk's side is the same whatever the directory's size.
local count = tonumber(os.getenv("BENCH_DOMAINS") or "1")
local path = assert(os.getenv("REQUEST_XML"), "set REQUEST_XML")
local f = assert(io.open(path, "rb"), "cannot open " .. path)
local template = f:read("*a")
f:close()

local requests = {}
local n = 0

function init(args)
  -- A different sequence per thread (each thread has its own Lua state and table addresses).
  math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000))
  for i = 1, 1024 do
    local domain = string.format("customer%07d.example", math.random(0, math.max(count, 1) - 1))
    local body = template:gsub("user@alpha%.example", "user@" .. domain)
    requests[i] = wrk.format("POST", nil, { ["Content-Type"] = "text/xml" }, body)
  end
end

function request()
  n = n % #requests + 1
  return requests[n]
end
