-- wrk script of the flash-sale storm: every request is the next buyer's order attempt.
--
--   wrk -t T -c C -d LIMIT -s orders.lua http://gateway -- TOKENS OFFER_ID RUN T BUYERS SECONDS
--
-- TOKENS holds one access token per line, the first BUYERS lines are the buyers' (buyer n is
-- line n, from 0). Thread k of T takes the buyers k, k+T, k+2T, ... and cycles through them:
-- buyer n's attempt a carries their token, their client address 10.0.0.0 + n (X-Forwarded-For,
-- believed from the load generator by the bench gateway) and the Idempotency-Key RUN-n-a.
-- A thread stops once it has run SECONDS and has as many answers as buyers (each buyer's first
-- attempt answered), and says so on stderr (`bench-thread-stopped`): wrk itself waits for LIMIT
-- unless interrupted, which the bench does when every thread has stopped. Each thread counts the answers; done()
-- adds the threads' counts up and prints one line, `bench-result {json}`, for the bench.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *ts);
]])
local timespec = ffi.new("bench_timespec")

local function now()
    ffi.C.clock_gettime(1, timespec) -- CLOCK_MONOTONIC
    return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) / 1e9
end

local threads = {}

function setup(thread)
    thread:set("thread_index", #threads)
    table.insert(threads, thread)
end

function init(args)
    local thread_count, buyer_count = tonumber(args[4]), tonumber(args[5])
    run, seconds = args[3], tonumber(args[6])
    tokens, buyers = {}, {}
    local n = 0
    for line in io.lines(args[1]) do
        if n >= buyer_count then
            break
        end
        if n % thread_count == thread_index then
            tokens[#tokens + 1] = line
            buyers[#buyers + 1] = n
        end
        n = n + 1
    end
    body = '{"offer_id":"' .. args[2] .. '","quantity":1}'
    sent, answered = 0, 0
    started = now()
    everyone_after = -1 -- seconds until each buyer of this thread had sent a first attempt
    last_created = -1 -- seconds until this thread's last 201
    counts = {
        created = 0, sold_out = 0, limit_reached = 0, event_not_live = 0, conflict_other = 0,
        rate_limited = 0, other = 0,
    }
    other_statuses = {}
end

local function address(n)
    return string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256,
        n % 256)
end

function request()
    local i = sent % #tokens + 1
    local attempt = math.floor(sent / #tokens) + 1
    local n = buyers[i]
    sent = sent + 1
    if sent == #tokens then
        everyone_after = now() - started
    end
    return wrk.format("POST", "/api/purchase/orders", {
        ["Authorization"] = "Bearer " .. tokens[i],
        ["Content-Type"] = "application/json",
        ["X-Forwarded-For"] = address(n),
        ["Idempotency-Key"] = run .. "-" .. n .. "-" .. attempt,
    }, body)
end

function response(status, headers, body)
    answered = answered + 1
    if answered >= #tokens and not stopped and now() - started >= seconds then
        stopped = true
        wrk.thread:stop()
        io.stderr:write("bench-thread-stopped\n")
    end
    if status == 201 then
        counts.created = counts.created + 1
        last_created = now() - started
    elseif status == 409 then
        local code = body:match('"code"%s*:%s*"([%w_]+)"')
        if counts[code] and code ~= "created" then
            counts[code] = counts[code] + 1
        else
            counts.conflict_other = counts.conflict_other + 1
        end
    elseif status == 429 then
        counts.rate_limited = counts.rate_limited + 1
    else
        counts.other = counts.other + 1
        local key = tostring(status)
        other_statuses[key] = (other_statuses[key] or 0) + 1
    end
end

local function json(value)
    if type(value) == "table" then
        local parts = {}
        for k, v in pairs(value) do
            parts[#parts + 1] = string.format("%q:%s", tostring(k), json(v))
        end
        return "{" .. table.concat(parts, ",") .. "}"
    end
    return tostring(value)
end

function done(summary, latency, requests)
    local total, statuses, sent_total, answered_total = {}, {}, 0, 0
    local everyone_after, last_created = 0, -1
    for _, thread in ipairs(threads) do
        for k, v in pairs(thread:get("counts")) do
            total[k] = (total[k] or 0) + v
        end
        for k, v in pairs(thread:get("other_statuses")) do
            statuses[k] = (statuses[k] or 0) + v
        end
        sent_total = sent_total + thread:get("sent")
        answered_total = answered_total + thread:get("answered")
        local after = thread:get("everyone_after")
        everyone_after = (after < 0 or everyone_after < 0) and -1 or math.max(everyone_after, after)
        last_created = math.max(last_created, thread:get("last_created"))
    end
    local result = {
        duration_us = summary.duration,
        requests = summary.requests,
        sent = sent_total,
        answered = answered_total,
        everyone_after_s = everyone_after,
        last_created_s = last_created,
        counts = total,
        other_statuses = statuses,
        socket_errors = {
            connect = summary.errors.connect,
            read = summary.errors.read,
            write = summary.errors.write,
            timeout = summary.errors.timeout,
        },
        latency_us = {
            mean = latency.mean,
            p50 = latency:percentile(50),
            p90 = latency:percentile(90),
            p99 = latency:percentile(99),
            p999 = latency:percentile(99.9),
            max = latency.max,
        },
    }
    io.write("bench-result ", json(result), "\n")
end
