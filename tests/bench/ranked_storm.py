"""Scenario `ranked-storm`: 5,000 bidders keep raising their bids in one ranked session for 30 s.

For each count of bidding replicas (1 by default): a new live ranked session (100 units, upset
price 50.00, the `weight` formula); wrk (bids.lua) cycles through the bidders, each from an
address of their own so that the gateway's per-address limits stay on, each raising their own
bid every time their turn comes (the price tells whose bid and which attempt it is). Then the
outcome is checked against what the client was told: the leaderboard's order and prices, a
sample of bidders' own standing, and bidding's count of bids and bidders in PostgreSQL (admin
dashboard). The session is then cancelled; with --close it is closed instead, and the rankings
PostgreSQL settles are checked against the leaderboard too, at a price: bidding then emails the
5,000 bidders (a minute or two of background work), and its reminder worker goes through every
bidder of the sessions ended in the last day every 5 s, for a day (see performance-log.md).
"""

import argparse
import itertools
import math
import random
import time
from typing import Any

import httpx
from harness import (
    BENCH,
    CpuMeter,
    Gateway,
    GatewayLog,
    bench_users,
    cents_of,
    client_address,
    emails_due,
    percentile,
    revision,
    run_wrk,
    table,
    wait_for_idle_stack,
    wait_for_quiet,
)

import stack

TARGET_RATE = 2500  # accepted bids per second, through the gateway
TARGET_P99_MS = 100
DRAIN_GRACE = 15  # seconds wrk may wait, after the storm, for the bids still in flight
UPSET_CENTS = 5000  # bids.lua's prices start at the upset price, 50.00


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bidders", type=int, default=5_000, help="distinct bidders (5000)")
    parser.add_argument("--inventory", type=int, default=100, help="units of the session (100)")
    parser.add_argument("--duration", type=float, default=30, help="storm seconds (30)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument("--replicas", default="1,2", help="bidding replicas, one storm each (1,2)")
    parser.add_argument(
        "--sample", type=int, default=200, help="bidders whose own standing is read after (200)"
    )
    parser.add_argument(
        "--close",
        action="store_true",
        help="close the session after the storm (not cancel) and check its settled rankings",
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=240,
        help="seconds to wait, at most, for the stack's own background work to end before each "
        "storm (240: after --close, the emails to 5,000 bidders take a minute or two)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=60,
        help="seconds to wait, at most, for an idle machine before each storm (60)",
    )


def run(profile: stack.Profile, args: argparse.Namespace) -> tuple[dict, bool]:
    gateway = Gateway(profile)
    code = revision()
    started = time.monotonic()
    tokens = bench_users(profile, args.bidders)
    users_seconds = time.monotonic() - started
    runs = []
    last_storm = -math.inf
    for replicas in [int(n) for n in args.replicas.split(",")]:
        print(f"\n-- {replicas} bidding replica(s)", flush=True)
        gateway.set_replicas("bidding", replicas)
        result = storm(gateway, profile, args, tokens, replicas, emails_due(last_storm))
        last_storm = time.monotonic()
        runs.append({"replicas": replicas, "storm": result})
    passed = all(run["storm"]["correct"] for run in runs)
    report(runs)
    document = {
        "parameters": {
            "bidders": args.bidders,
            "inventory": args.inventory,
            "duration_s": args.duration,
            "wrk_threads": args.threads,
            "wrk_connections": args.connections,
            "sample": args.sample,
            "close": args.close,
            "wait_quiet_s": args.wait_quiet,
            "wait_idle_s": args.wait_idle,
        },
        "targets": {"accepted_per_second": TARGET_RATE, "p99_ms": TARGET_P99_MS},
        "code": code,
        "bench_users_seconds": round(users_seconds, 2),
        "runs": runs,
        "passed": passed,
    }
    return document, passed


# ------------------------------------------------------------------------------- the storm


def storm(
    gateway: Gateway,
    profile: stack.Profile,
    args: argparse.Namespace,
    tokens: list[str],
    replicas: int,
    emails_in: float = 0,
) -> dict[str, Any]:
    title = f"Bench ranked storm, {replicas} replica(s)"
    event = gateway.create_ranked(args.inventory, title=title)
    event_id, offer_id = event["id"], event["offers"][0]["id"]
    warm_up(profile, replicas, tokens[: args.bidders], offer_id)
    stack_busy_before = wait_for_idle_stack(profile, args.wait_idle, at_least=emails_in)
    busy_before = wait_for_quiet(args.wait_quiet)
    print(
        f"   storm: {args.bidders:,} bidders raising for {args.duration:g}s "
        f"(wrk -t{args.threads} -c{args.connections})",
        flush=True,
    )
    out = profile.dir / "bench-bidders.txt"
    out.unlink(missing_ok=True)
    access_log = GatewayLog(profile)
    meter = CpuMeter(profile)
    meter.start()
    result = run_wrk(
        BENCH / "bids.lua",
        profile.gateway,
        [
            str(profile.dir / "bench-tokens.txt"),
            offer_id,
            str(args.threads),
            str(args.bidders),
            str(out),
            str(args.duration),
        ],
        threads=args.threads,
        connections=args.connections,
        limit=args.duration + DRAIN_GRACE,
    )
    cpu = meter.stop()
    uri = f"/api/bidding/sessions/{offer_id}/bids"
    at_gateway = access_log.durations("POST", uri)
    bidders = read_bidders(out)
    counts = result["counts"]
    seconds = result["duration_us"] / 1e6
    unanswered = result["sent"] - result["answered"]
    errors = counts["other"] + sum(result["socket_errors"].values())
    truth = check(
        gateway, profile, args, tokens, event_id, offer_id, bidders, counts["accepted"], unanswered
    )
    by_second = result["accepted_by_second"]
    figures = {
        "event_id": event_id,
        "offer_id": offer_id,
        "requests": result["requests"],
        "seconds": round(seconds, 2),
        "requests_per_second": round(result["requests"] / seconds),
        "accepted_per_second": round(counts["accepted"] / seconds),
        "accepted_by_second": [by_second.get(str(s), 0) for s in range(int(seconds) + 1)],
        "latency_ms": {k: round(v / 1000, 2) for k, v in result["latency_us"].items()},
        "gateway_ms_by_status": {
            status: {
                "count": len(durations),
                "p50": round(percentile(durations, 50) * 1000, 1),
                "p99": round(percentile(durations, 99) * 1000, 1),
            }
            for status, durations in sorted(at_gateway.items())
        },
        "accepted": counts["accepted"],
        "conflicts": {code: counts[code] for code in ("bid_too_low", "conflict_other")},
        "rate_limited": counts["rate_limited"],
        "errors": errors,
        "other_statuses": result["other_statuses"],
        "socket_errors": result["socket_errors"],
        "unattributed_201s": result["unattributed"],
        "unanswered_at_end": unanswered,
        "bidders_with_a_201": sum(1 for b in bidders.values() if b["best"] >= 0),
        "attempts_per_bidder": {
            "min": min(b["attempts"] for b in bidders.values()),
            "max": max(b["attempts"] for b in bidders.values()),
        },
        "busy_cores_before": round(busy_before, 2),
        "stack_busy_cores_before": round(stack_busy_before, 2),
        "cpu_seconds": cpu,
        **truth["figures"],
    }
    checks = {
        "every bidder placed a bid": figures["bidders_with_a_201"] == args.bidders,
        "no raise refused (409)": counts["bid_too_low"] + counts["conflict_other"] == 0,
        "every 201 names its bidder": result["unattributed"] == 0,
        **truth["checks"],
    }
    targets = {
        f"accepted/s >= {TARGET_RATE}": figures["accepted_per_second"] >= TARGET_RATE,
        f"p99 < {TARGET_P99_MS} ms": figures["latency_ms"]["p99"] < TARGET_P99_MS,
    }
    return {**figures, "checks": checks, "targets": targets, "correct": all(checks.values())}


def warm_up(profile: stack.Profile, replicas: int, tokens: list[str], offer_id: str) -> None:
    """Each replica fetches the JWKS, opens its pools and loads the board before the storm."""
    for n in range(1, replicas + 1):
        base = f"http://127.0.0.1:{profile.replica_port('bidding', n)}/api/bidding"
        with httpx.Client(base_url=base, timeout=10) as client:
            for token in tokens[:20]:
                client.get(f"/sessions/{offer_id}/me", headers={"Authorization": f"Bearer {token}"})
                client.get(f"/sessions/{offer_id}/leaderboard")


def read_bidders(path) -> dict[int, dict[str, int]]:
    """bids.lua's account of each bidder: highest price answered 201 (-1: none), last price
    sent, attempts."""
    bidders = {}
    for line in path.read_text().splitlines():
        n, best, last, attempts = map(int, line.split())
        bidders[n] = {"best": best, "last": last, "attempts": attempts}
    return bidders


# ------------------------------------------------------------------------------ the truth


def check(
    gateway: Gateway,
    profile: stack.Profile,
    args: argparse.Namespace,
    tokens: list[str],
    event_id: str,
    offer_id: str,
    bidders: dict[int, dict[str, int]],
    accepted_201s: int,
    unanswered: int,
) -> dict[str, Any]:
    """What bidding holds against what its answers said. A bid still in flight when wrk stopped
    may have been accepted unseen: a bidder's price may then be their last one sent rather
    than their highest 201, at most `unanswered` times."""
    count = len(bidders)

    def bidder_of(cents: int) -> int:
        return (cents - UPSET_CENTS) % count

    def agrees(n: int, cents: int) -> str:
        """Whether bidder n holding `cents` agrees with what they were told: "201" (their
        highest 201), "in flight" (their last price, never answered), or "wrong"."""
        b = bidders.get(n)
        if b is None:
            return "unknown"
        if cents == b["best"]:
            return "201"
        if cents == b["last"] and b["last"] > b["best"]:
            return "in flight"
        return "wrong"

    board = gateway.request("GET", f"/api/bidding/sessions/{offer_id}/leaderboard?limit=100")
    prices = [cents_of(line["price"]) for line in board]
    on_board = [bidder_of(c) for c in prices]
    verdicts = [agrees(n, c) for n, c in zip(on_board, prices, strict=True)]
    lowest = min(prices, default=0)
    missing = [n for n, b in bidders.items() if b["best"] > lowest and n not in set(on_board)]
    bonus = {line["score"] - float(line["price"]) for line in board}

    sample = random.Random(offer_id).sample(sorted(bidders), min(args.sample, count))
    standings = []
    with httpx.Client(base_url=profile.gateway, timeout=10) as client:
        for n in sample:
            headers = {"Authorization": f"Bearer {tokens[n]}", "X-Forwarded-For": client_address(n)}
            answer = client.get(f"/api/bidding/sessions/{offer_id}/me", headers=headers)
            if answer.status_code != 200:
                standings.append("no answer")
            elif (price := answer.json()["price"]) is None:  # no bid: right if none was taken
                standings.append("201" if bidders[n]["best"] < 0 else "wrong")
            else:
                standings.append(agrees(n, cents_of(price)))

    stored = gateway.figures(event_id)  # PostgreSQL's count of bids and bidders
    listed = [(r["rank"], r["display_name"], r["price"]) for r in board]
    ranked = None
    if args.close:
        gateway.close_event(event_id)
        results = gateway.results(event_id)
        [session] = [s for s in results["sessions"] if s["offer_id"] == offer_id]
        ranked = [(r["rank"], r["display_name"], r["price"]) for r in session["rankings"]]
    else:
        gateway.cancel_event(event_id)
    accepted = sum(b["attempts"] > 0 for b in bidders.values())  # placed at least once
    in_flight = verdicts.count("in flight") + standings.count("in flight")
    figures = {
        "leaderboard": {
            "lines": len(board),
            "from_201s": verdicts.count("201"),
            "in_flight_at_end": verdicts.count("in flight"),
            "wrong": len(board) - verdicts.count("201") - verdicts.count("in flight"),
            "distinct_bidders": len(set(on_board)),
            "missing_better_bidders": len(missing),
            "score_minus_price": sorted(round(b, 6) for b in bonus),
        },
        "own_standing_sample": {
            "read": len(standings),
            "from_201s": standings.count("201"),
            "in_flight_at_end": standings.count("in flight"),
            "wrong": len(standings) - standings.count("201") - standings.count("in flight"),
        },
        "postgres": stored,
        "settled_rankings_equal_leaderboard": None if ranked is None else ranked == listed,
    }
    checks = {
        "leaderboard ordered by score": all(
            a["score"] >= b["score"] for a, b in itertools.pairwise(board)
        )
        and [line["rank"] for line in board] == list(range(1, len(board) + 1)),
        "leaderboard prices = each bidder's highest accepted": figures["leaderboard"]["wrong"] == 0,
        "leaderboard: one line per bidder": len(set(on_board)) == len(board)
        and len({line["display_name"] for line in board}) == len(board),
        "leaderboard holds the best bidders": not missing and len(board) == min(100, accepted),
        "own standing = highest accepted (sample)": figures["own_standing_sample"]["wrong"] == 0,
        "in-flight explanations <= unanswered": in_flight <= 2 * unanswered,
        "postgres: every 201 stored": stored is not None
        and accepted_201s <= stored["bids"] <= accepted_201s + unanswered,
        "postgres: bidders": stored is not None and stored["participants"] == accepted,
    }
    if ranked is not None:
        checks["postgres: settled rankings = leaderboard"] = ranked == listed
    return {"figures": figures, "checks": checks}


# ------------------------------------------------------------------------------ the report


def report(runs: list[dict]) -> None:
    print()
    print(
        table(
            [
                "ranked-storm",
                "replicas",
                "accepted/s",
                "p50 ms",
                "p99 ms",
                "201",
                "409",
                "429",
                "errors",
                "bidders",
                "bids in PG",
                "board ok",
                "/me ok",
            ],
            [
                [
                    "raise bids",
                    run["replicas"],
                    s["accepted_per_second"],
                    s["latency_ms"]["p50"],
                    s["latency_ms"]["p99"],
                    s["accepted"],
                    sum(s["conflicts"].values()),
                    s["rate_limited"],
                    s["errors"],
                    s["bidders_with_a_201"],
                    (s["postgres"] or {}).get("bids", "?"),
                    f"{s['leaderboard']['from_201s'] + s['leaderboard']['in_flight_at_end']}"
                    f"/{s['leaderboard']['lines']}",
                    f"{s['own_standing_sample']['read'] - s['own_standing_sample']['wrong']}"
                    f"/{s['own_standing_sample']['read']}",
                ]
                for run in runs
                for s in [run["storm"]]
            ],
        )
    )
    print()
    for run in runs:
        s = run["storm"]
        failed = [name for name, ok in s["checks"].items() if not ok]
        missed = [name for name, ok in s["targets"].items() if not ok]
        verdict = "correct" if not failed else "WRONG: " + ", ".join(failed)
        targets = "targets met" if not missed else "targets missed: " + ", ".join(missed)
        print(f"{run['replicas']} replica(s): {verdict}; {targets}")
        timing = ", ".join(
            f"{status}: p50 {t['p50']:,.0f} ms, p99 {t['p99']:,.0f} ms"
            for status, t in s["gateway_ms_by_status"].items()
        )
        print(f"   answers timed by the gateway, by status: {timing}")
        print(
            f"   PostgreSQL: {s['postgres']} against {s['accepted']:,} 201s "
            f"(+{s['unanswered_at_end']} unanswered when wrk stopped)"
        )
        seconds = s["seconds"]
        busy = sorted(s["cpu_seconds"].items(), key=lambda item: -item[1])
        shares = ", ".join(f"{name} {cpu / seconds:.0%}" for name, cpu in busy if cpu >= 0.05)
        print(f"   CPU during the storm (one core = 100%): {shares}")
