-- One audited ledger append per request, each to the next contact of a list (ids.lua, written
-- by scripts/bench-trail), each wrk thread starting at its own place in it.
local ids = dofile(os.getenv("ASSENT_BENCH_IDS"))
local counter = 0
local threads = 0

-- Runs in the main state: gives each thread its own starting place (a global of its state).
function setup(thread)
  thread:set("offset", threads * 97)
  threads = threads + 1
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"at": "2025-05-10T14:03:00Z", "type": "opt_out", "channel": "email", "topic": "*"}'

function request()
  counter = counter + 1
  local id = ids[((counter + (offset or 0)) % #ids) + 1]
  return wrk.format(nil, "/api/v1/contacts/" .. id .. "/ledger")
end

function done(summary, latency, requests)
  local failed = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format("failed requests: %d\n", failed))
end
