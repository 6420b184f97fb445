-- wrk script: replay pre-built raw HTTP requests (bench/run.py writes them, signed where needed).
--
--   wrk -t2 -c64 -d15s -s bench/requests.lua http://127.0.0.1:8000 -- FILE
--
-- FILE holds complete requests (request line, headers, body) separated by NUL bytes. Thread n of
-- N takes requests n, n+N, n+2N, … so no two threads send the same one (a Twilio MessageSid is
-- sent once unless the run outlasts the file, which done() reports as `wrapped`). Every response
-- status is counted; done() prints one JSON line for bench/run.py.

local threads = {}
local counter = 0

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   local path = args[1]
   local f = assert(io.open(path, "rb"))
   local data = f:read("*a")
   f:close()
   local all = {}
   for chunk in string.gmatch(data, "([^%z]+)") do
      all[#all + 1] = chunk
   end
   local step = tonumber(args[2]) or 1
   reqs = {}
   for i = tid + 1, #all, step do
      reqs[#reqs + 1] = all[i]
   end
   if #reqs == 0 then
      reqs = all
   end
   idx = 0
   wrapped = 0
   statuses = {}
end

function request()
   idx = idx + 1
   if idx > #reqs then
      idx = 1
      wrapped = wrapped + 1
   end
   return reqs[idx]
end

function response(status, headers, body)
   local key = tostring(status)
   statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
   local counts = {}
   local wraps = 0
   for _, thread in ipairs(threads) do
      local s = thread:get("statuses")
      if s then
         for k, v in pairs(s) do
            counts[k] = (counts[k] or 0) + v
         end
      end
      wraps = wraps + (thread:get("wrapped") or 0)
   end
   local parts = {}
   for k, v in pairs(counts) do
      parts[#parts + 1] = string.format('"%s": %d', k, v)
   end
   local e = summary.errors
   io.write(string.format(
      '\nWRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"statuses": {%s}, "wrapped": %d}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      latency.mean,
      e.connect, e.read, e.write, e.status, e.timeout,
      table.concat(parts, ", "), wraps))
end
