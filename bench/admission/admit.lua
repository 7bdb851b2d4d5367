-- wrk script: POST /api/workflows/{id}/run for (user, workflow) pairs read from a file.
-- Usage: wrk ... -s admit.lua URL -- <pairs file> <threads>
-- Each wrk thread walks the pairs round robin from its own offset (thread k: k, k+T, k+2T, ...),
-- so with more pairs than connections two requests in flight rarely share a user.
local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

function init(args)
  pairs_ = {}
  for line in io.lines(args[1]) do
    local u, wf = line:match("^(%S+)%s+(%S+)$")
    if u then pairs_[#pairs_ + 1] = { u, wf } end
  end
  step = tonumber(args[2]) or 1
  i = tid or 0
  body = '{"inputs":{"message":"hi","a":1,"b":2}}'
end

function request()
  local p = pairs_[(i % #pairs_) + 1]
  i = i + step
  return wrk.format("POST", "/api/workflows/" .. p[2] .. "/run",
    { ["X-User-Id"] = p[1], ["Content-Type"] = "application/json" }, body)
end

function done(summary, latency, requests)
  io.write(string.format("WRK requests=%d duration_us=%d non2xx=%d sockerr=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
