-- wrk script for scripts/perf/bench.sh: two requests, A and B, interleaved in slices of time.
--
--   wrk -t1 ... -s scripts/perf/interleave.lua URL -- PATH_A HEADER_A STATUS_A PATH_B HEADER_B STATUS_B
--
-- Time is cut in slices of 20 ms, taken in pairs: one slice of a pair sends only A, the other
-- only B, and which comes first is drawn at random for each pair. Responses are counted in the
-- slice they arrive in, after its first 3 ms: by then the other kind's requests still in
-- flight (32 connections, some 30 us each) have been answered. A case and its baseline so
-- share the machine's state to within 20 ms, where runs of a few seconds taken one after the
-- other differ by up to 20% on a shared VM.
--
-- Printed by done(): "interleave SUM_A SUM_B PAIRS RATE_A RATE_B BAD", the responses counted in
-- the A and B slices of the complete pairs (the first pair, which holds the connections'
-- start, and the last, cut short, are left out), the pairs, A's and B's requests/s over their
-- counted time, and how many responses had neither expected status.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } interleave_timespec;
int clock_gettime(int clock, interleave_timespec *ts);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("interleave_timespec")
local function now_ms()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

slice_ms, guard_ms = 20, 3
counts, bad = {}, 0
local requests, statuses, start

local function one_header(line)
    local name, value = line:match("^([^:]+):%s*(.*)$")
    return { [name] = value }
end

function init(args)
    requests = { wrk.format("GET", args[1], one_header(args[2])),
                 wrk.format("GET", args[4], one_header(args[5])) }
    statuses = { tonumber(args[3]), tonumber(args[6]) }
    start = now_ms()
end

-- Each pair of slices (2p, 2p + 1) holds A then B or B then A, in an order drawn from a fixed
-- pseudo-random sequence (the same in every Lua state wrk runs this script in): a disturbance
-- that repeats on this machine at some period cannot then line up with one of the two.
local first_is_b = {}
math.randomseed(20261123)
for p = 0, 100000 do
    first_is_b[p] = math.random(0, 1)
end

-- 1 for A, 2 for B.
local function kind(slice)
    local pair = math.floor(slice / 2)
    return 1 + (first_is_b[pair] + slice % 2) % 2
end

function request()
    return requests[kind(math.floor((now_ms() - start) / slice_ms))]
end

function response(status)
    local t = now_ms() - start
    local slice = math.floor(t / slice_ms)
    if t - slice * slice_ms < guard_ms then
        return
    end
    local k = kind(slice)
    if status ~= statuses[k] and status ~= statuses[3 - k] then
        bad = bad + 1
    end
    counts[slice] = (counts[slice] or 0) + 1
end

local threads = {}
function setup(thread)
    table.insert(threads, thread)
end

function done()
    local thread = threads[1]
    local got = thread:get("counts")
    local last = 0
    for slice in pairs(got) do
        last = math.max(last, slice)
    end
    local sum, pairs_counted = { 0, 0 }, 0
    for p = 1, math.floor(last / 2) - 1 do
        local first, second = 2 * p, 2 * p + 1
        local a, b = got[first] or 0, got[second] or 0
        if kind(first) == 2 then
            a, b = b, a
        end
        sum[1], sum[2] = sum[1] + a, sum[2] + b
        pairs_counted = pairs_counted + 1
    end
    local seconds = math.max(pairs_counted, 1) * (slice_ms - guard_ms) / 1000
    io.write(string.format("interleave %d %d %d %.0f %.0f %d\n", sum[1], sum[2], pairs_counted,
        sum[1] / seconds, sum[2] / seconds, thread:get("bad")))
end
