-- wrk driver for scripts/stress/hostile-load.sh; appended to the generated `cases` table
-- (scripts/stress/hostile-load.py). Cycles through every case on every connection, counts the
-- statuses per case from the X-Case response header (= ?case=N), checks X-Sub, and in done()
-- writes the per-class table and the verdict to $HL_OUT.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   reqs = {}
   for i, c in ipairs(cases) do
      local h = {}
      for _, kv in ipairs(c.headers) do h[kv[1]] = kv[2] end
      reqs[i] = wrk.format("GET", c.path .. "?case=" .. i, h)
   end
   -- start each thread elsewhere in the cycle
   n = math.random(#reqs) - 1
   counts = {}     -- "i:status" -> count
   xsub_bad = {}   -- i -> count of responses whose X-Sub differs from the expected one
   xsub_seen = {}  -- i -> one offending X-Sub value
   unknown = {}    -- status -> responses without X-Case
   injected = 0    -- responses carrying X-Evil / X-Injected (header injection reached a response)
end

function request()
   n = n % #reqs + 1
   return reqs[n]
end

function response(status, headers, body)
   if headers["X-Evil"] or headers["X-Injected"] then injected = injected + 1 end
   local i = headers["X-Case"]
   local c = i and cases[tonumber(i)]
   if not c then
      unknown[status] = (unknown[status] or 0) + 1
      return
   end
   local k = i .. ":" .. status
   counts[k] = (counts[k] or 0) + 1
   if c.xsub ~= nil then
      local got = headers["X-Sub"] or ""
      if got ~= c.xsub then
         xsub_bad[i] = (xsub_bad[i] or 0) + 1
         xsub_seen[i] = got
      end
   end
end

local function esc(s)
   return (string.gsub(s, "[^%w%p ]", function(ch) return string.format("\\x%02x", string.byte(ch)) end))
end

function done(summary, latency, requests)
   local per_case = {}   -- i -> {status -> count}
   local xbad, xseen, unk, inj = {}, {}, {}, 0
   for _, t in ipairs(threads) do
      for k, v in pairs(t:get("counts")) do
         local i, st = string.match(k, "^(%d+):(%d+)$")
         i, st = tonumber(i), tonumber(st)
         per_case[i] = per_case[i] or {}
         per_case[i][st] = (per_case[i][st] or 0) + v
      end
      for i, v in pairs(t:get("xsub_bad")) do xbad[tonumber(i)] = (xbad[tonumber(i)] or 0) + v end
      for i, v in pairs(t:get("xsub_seen")) do xseen[tonumber(i)] = v end
      for st, v in pairs(t:get("unknown")) do unk[st] = (unk[st] or 0) + v end
      inj = inj + t:get("injected")
   end

   local out = assert(io.open(os.getenv("HL_OUT"), "w"))
   local failures = 0
   local function fail(msg)
      failures = failures + 1
      out:write("FAIL ", msg, "\n")
   end

   -- per class: requests and statuses
   local classes, order = {}, {}
   for i, c in ipairs(cases) do
      if not classes[c.cls] then
         classes[c.cls] = {cases = 0, total = 0, statuses = {}, bad = 0}
         table.insert(order, c.cls)
      end
      local cl = classes[c.cls]
      cl.cases = cl.cases + 1
      local got = per_case[i] or {}
      local total = 0
      for st, v in pairs(got) do
         total = total + v
         cl.statuses[st] = (cl.statuses[st] or 0) + v
         if st ~= c.status then
            cl.bad = cl.bad + v
            fail(string.format("case %d %s/%s: %d responses with status %d, expected %d",
                               i, c.cls, c.name, v, st, c.status))
         end
      end
      cl.total = cl.total + total
      if total == 0 then
         fail(string.format("case %d %s/%s: no response attributed", i, c.cls, c.name))
      end
      if xbad[i] then
         fail(string.format("case %d %s/%s: %d responses with X-Sub \"%s\", expected \"%s\"",
                            i, c.cls, c.name, xbad[i], esc(xseen[i]), esc(c.xsub)))
      end
   end
   for st, v in pairs(unk) do
      fail(string.format("%d responses with status %d carry no X-Case", v, st))
   end
   if inj > 0 then fail(string.format("%d responses carry an injected X-Evil/X-Injected header", inj)) end
   local e = summary.errors
   out:write(string.format("TOTAL requests=%d duration_s=%.1f rps=%.0f connect_err=%d read_err=%d write_err=%d timeout=%d status_err=%d\n",
                           summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
                           e.connect, e.read, e.write, e.timeout, e.status))
   if e.timeout > 0 then fail(string.format("%d requests timed out", e.timeout)) end
   for _, name in ipairs(order) do
      local cl = classes[name]
      local sts = {}
      for st, v in pairs(cl.statuses) do table.insert(sts, string.format("%d:%d", st, v)) end
      table.sort(sts)
      out:write(string.format("CLASS %-12s cases=%-3d responses=%-9d unexpected=%-6d statuses=%s\n",
                              name, cl.cases, cl.total, cl.bad, table.concat(sts, ",")))
   end
   out:write(string.format("VERDICT %s %d\n", failures == 0 and "PASS" or "FAIL", failures))
   out:close()
end
