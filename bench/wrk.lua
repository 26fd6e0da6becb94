-- wrk script for scripts/bench.sh. Requests come pre-signed from bench/sign.py (one per
-- line: METHOD \t PATH \t BODY \t Header: value ...) in the file named by BENCH_REQUESTS.
--
--   BENCH_MODE=fixed  the first line, built once: wrk sends the same request every time
--                     (reuse path, rejection path, bare upstream call).
--   BENCH_MODE=cycle  every line, in turn; thread t of n takes lines t, t+n, t+2n, ... so no
--                     two threads send the same body (create path: distinct userIds).
--                     Pass the thread count after "--" (wrk ... -- 2).
--
-- BENCH_DELAY_MS=d  each connection waits d ms after a response before its next request:
--                     paces the load below saturation at the same connection count.
--
-- BENCH_RECORD=path  each thread appends the launch-link path (`/w/...`) of every answer
--                     with a `widgetUrl` to path-<thread>: creates that feed a launch run.
--
-- done() prints one machine-readable line: BENCHRESULT rps=... p50_us=... p99_us=... ...

local file = os.getenv("BENCH_REQUESTS")
local mode = os.getenv("BENCH_MODE") or "fixed"

local function split(s, sep)
  local out, from = {}, 1
  while true do
    local i = string.find(s, sep, from, true)
    if not i then table.insert(out, string.sub(s, from)); return out end
    table.insert(out, string.sub(s, from, i - 1))
    from = i + 1
  end
end

local function parse(line)
  local f = split(line, "\t")
  local headers = { ["Content-Type"] = "application/json" }
  for i = 4, #f do
    local k, v = string.match(f[i], "^([^:]+):%s*(.*)$")
    headers[k] = v
  end
  return f[1], f[2], f[3], headers
end

local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if delay_ms and delay_ms > 0 then
  function delay() return delay_ms end
end

local counter = 1
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

if mode == "fixed" then
  function init(args)
    local f = assert(io.open(file, "r"))
    local line = f:read("*l")
    f:close()
    local method, path, body, headers = parse(line)
    wrk.method, wrk.path, wrk.body = method, path, body
    for k, v in pairs(headers) do wrk.headers[k] = v end
  end
else
  local requests, n, i = {}, 0, 0
  function init(args)
    local nthreads = tonumber(args[1] or "1")
    local k = 0
    for line in io.lines(file) do
      if k % nthreads == (tid - 1) then
        local method, path, body, headers = parse(line)
        for hk, hv in pairs(wrk.headers) do if headers[hk] == nil then headers[hk] = hv end end
        n = n + 1
        requests[n] = wrk.format(method, path, headers, body)
      end
      k = k + 1
    end
  end
  function request()
    i = i + 1
    if i > n then i = 1 end -- wraps only if the list is too short; the bench checks for that
    return requests[i]
  end
end

local record = os.getenv("BENCH_RECORD")
if record and record ~= "" then
  local out
  function response(status, headers, body)
    if not out then out = assert(io.open(record .. "-" .. tid, "a")) end
    local path = string.match(body, '"widgetUrl":%s*"https?://[^/"]+(/w/[^"]+)"')
    if path then out:write(path, "\n"); out:flush() end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHRESULT rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d requests=%d duration_us=%d status_errors=%d socket_errors=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout))
end
