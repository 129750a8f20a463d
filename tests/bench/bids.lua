-- wrk script of the ranked storm: every request is the next bidder's raise in one session.
--
--   wrk -t T -c C -d LIMIT -s bids.lua http://gateway -- TOKENS OFFER_ID T BIDDERS OUT SECONDS
--
-- TOKENS holds one access token per line, the first BIDDERS lines are the bidders' (bidder n is
-- line n, from 0). Thread k of T takes the bidders k, k+T, k+2T, ... and cycles through them:
-- bidder n's attempt a (from 0) carries their token, their client address 10.0.0.0 + n
-- (X-Forwarded-For, believed from the load generator by the bench gateway) and the price
-- 50.00 + (a·BIDDERS + n) cents: strictly increasing for each bidder (a bidder's next attempt
-- is sent long after the last was answered: a thread has far more bidders than connections),
-- and telling whose bid it is, so that an answer's price names its bidder and attempt.
-- After SECONDS a thread sends nothing more (delay() holds each connection back) and, once every
-- bid it sent is answered, stops and says so on stderr (`bench-thread-stopped`): the storm ends
-- with no bid in flight, so that what the client was told is all that happened. wrk itself
-- waits for LIMIT unless interrupted, which the bench does when every thread has stopped.
-- Each thread counts the answers by status and keeps, per bidder, the highest price answered
-- 201 and the last price sent; done() adds the counts up, prints one line,
-- `bench-result {json}`, for the bench, and writes OUT: one line per bidder,
-- "n best_cents last_sent_cents attempts" (best -1: no 201).

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

local UPSET_CENTS = 5000
local threads = {}

function setup(thread)
    thread:set("thread_index", #threads)
    table.insert(threads, thread)
end

function init(args)
    local thread_count = tonumber(args[3])
    bidder_count, out_path, seconds = tonumber(args[4]), args[5], tonumber(args[6])
    tokens, bidders = {}, {}
    local n = 0
    for line in io.lines(args[1]) do
        if n >= bidder_count then
            break
        end
        if n % thread_count == thread_index then
            tokens[#tokens + 1] = line
            bidders[#bidders + 1] = n
        end
        n = n + 1
    end
    path = "/api/bidding/sessions/" .. args[2] .. "/bids"
    sent, answered = 0, 0
    started = now()
    best, last_sent, attempts = {}, {}, {}
    for _, b in ipairs(bidders) do
        best[b], last_sent[b], attempts[b] = -1, -1, 0
    end
    accepted_by_second = {} -- second of the run (from 0) -> 201s answered in it
    counts = { accepted = 0, bid_too_low = 0, conflict_other = 0, rate_limited = 0, other = 0 }
    other_statuses = {}
    unattributed = 0 -- 201s whose price names no bidder of this thread (must stay 0)
end

local function address(n)
    return string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256,
        n % 256)
end

local function stop_when_drained()
    if draining and answered >= sent and not stopped then
        stopped = true
        wrk.thread:stop()
        io.stderr:write("bench-thread-stopped\n")
    end
end

function delay()
    running = true -- wrk calls delay() before each request it writes
    if not draining and now() - started >= seconds then
        draining = true
    end
    stop_when_drained()
    return draining and 3600000 or 0
end

function request()
    if not running then -- wrk's own trial call, before the run: nothing is sent
        return wrk.format("POST", path, {}, '{"price":"50.00"}')
    end
    local i = sent % #tokens + 1
    local attempt = math.floor(sent / #tokens)
    local n = bidders[i]
    sent = sent + 1
    local cents = UPSET_CENTS + attempt * bidder_count + n
    last_sent[n], attempts[n] = cents, attempts[n] + 1
    return wrk.format("POST", path, {
        ["Authorization"] = "Bearer " .. tokens[i],
        ["Content-Type"] = "application/json",
        ["X-Forwarded-For"] = address(n),
    }, string.format('{"price":"%d.%02d"}', math.floor(cents / 100), cents % 100))
end

function response(status, headers, body)
    answered = answered + 1
    if status == 201 then
        counts.accepted = counts.accepted + 1
        local second = math.floor(now() - started)
        accepted_by_second[second + 1] = (accepted_by_second[second + 1] or 0) + 1
        local units, hundredths = body:match('"price"%s*:%s*"(%d+)%.(%d%d)"')
        local cents = units and tonumber(units) * 100 + tonumber(hundredths)
        local n = cents and (cents - UPSET_CENTS) % bidder_count
        if n and best[n] then
            if cents > best[n] then
                best[n] = cents
            end
        else
            unattributed = unattributed + 1
        end
    elseif status == 409 then
        local code = body:match('"code"%s*:%s*"([%w_]+)"')
        if code == "bid_too_low" then
            counts.bid_too_low = counts.bid_too_low + 1
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
    stop_when_drained()
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
    local total, statuses, by_second = {}, {}, {}
    local sent_total, answered_total, unattributed_total = 0, 0, 0
    local out = io.open(threads[1]:get("out_path"), "w")
    for _, thread in ipairs(threads) do
        for k, v in pairs(thread:get("counts")) do
            total[k] = (total[k] or 0) + v
        end
        for k, v in pairs(thread:get("other_statuses")) do
            statuses[k] = (statuses[k] or 0) + v
        end
        for k, v in pairs(thread:get("accepted_by_second")) do
            by_second[k] = (by_second[k] or 0) + v
        end
        sent_total = sent_total + thread:get("sent")
        answered_total = answered_total + thread:get("answered")
        unattributed_total = unattributed_total + thread:get("unattributed")
        local best, last_sent, attempts = thread:get("best"), thread:get("last_sent"),
            thread:get("attempts")
        for n, cents in pairs(best) do
            out:write(string.format("%d %d %d %d\n", n, cents, last_sent[n], attempts[n]))
        end
    end
    out:close()
    local seconds = {}
    for k, v in pairs(by_second) do
        seconds[#seconds + 1] = string.format('"%d":%d', k - 1, v)
    end
    local result = {
        duration_us = summary.duration,
        requests = summary.requests,
        sent = sent_total,
        answered = answered_total,
        unattributed = unattributed_total,
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
    local text = json(result)
    -- accepted 201s per second of the run, as a JSON object (second -> count)
    text = text:sub(1, -2) .. ',"accepted_by_second":{' .. table.concat(seconds, ",") .. "}}"
    io.write("bench-result ", text, "\n")
end
