"""Scenario `flash-sale`: 20,000 buyers storm one offer of 500 units through the gateway.

For each count of purchase replicas (1, then 2): a new live flash sale; wrk (orders.lua) sends
every buyer's order within the first seconds and keeps them retrying for the whole storm, each
buyer from an address of their own so that the gateway's per-address limits stay on; then the
truth is read from purchase (orders, stock left, oversell). Then a few hundred buyers go through
the whole purchase (stock, order, confirm) on a second sale with an asyncio client, for the
latency of the flow.
"""

import argparse
import asyncio
import os
import resource
import ssl
import time
import uuid
from typing import Any

import httpx
from harness import (
    BENCH,
    CpuMeter,
    Gateway,
    GatewayLog,
    bench_users,
    client_address,
    percentile,
    run_wrk,
    table,
    wait_for_quiet,
)

import stack

TARGET_RATE = 4000  # order requests per second during the storm, through the gateway
TARGET_P99_MS = 100
STORM_GRACE = 60  # seconds the storm may run on until every buyer has tried once
FLOW_ADDRESSES = 1 << 22  # flow buyers' addresses follow the storm's (10.64.0.0 on)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--buyers", type=int, default=20_000, help="distinct buyers (20000)")
    parser.add_argument("--stock", type=int, default=500, help="units on sale (500)")
    parser.add_argument(
        "--duration",
        type=float,
        default=10,
        help="storm seconds, at least: it goes on until every buyer has tried once (10)",
    )
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--connections", type=int, default=200, help="wrk connections (200)")
    parser.add_argument("--replicas", default="1,2", help="purchase replicas, one storm each (1,2)")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=60,
        help="seconds to wait, at most, for an idle machine before each storm and flow (60)",
    )
    parser.add_argument(
        "--flow-buyers", type=int, default=300, help="buyers of the multi-step flow (300)"
    )
    parser.add_argument(
        "--flow-seconds",
        type=float,
        default=3,
        help="the flow buyers arrive evenly over this many seconds (3)",
    )


def run(profile: stack.Profile, args: argparse.Namespace) -> tuple[dict, bool]:
    gateway = Gateway(profile)
    replica_counts = [int(n) for n in args.replicas.split(",")]
    started = time.monotonic()
    tokens = bench_users(profile, max(args.buyers, args.flow_buyers))
    users_seconds = time.monotonic() - started
    runs = []
    for replicas in replica_counts:
        print(f"\n-- {replicas} purchase replica(s)", flush=True)
        gateway.set_replicas("purchase", replicas)
        storm_result = storm(gateway, profile, args, tokens, replicas)
        flow_result = flow(gateway, args, tokens)
        runs.append({"replicas": replicas, "storm": storm_result, "flow": flow_result})
    passed = all(run["storm"]["correct"] for run in runs) and all(
        run["flow"]["correct"] for run in runs
    )
    report(runs)
    document = {
        "parameters": {
            "buyers": args.buyers,
            "stock": args.stock,
            "duration_s": args.duration,
            "wrk_threads": args.threads,
            "wrk_connections": args.connections,
            "flow_buyers": args.flow_buyers,
            "flow_seconds": args.flow_seconds,
            "wait_quiet_s": args.wait_quiet,
        },
        "targets": {"requests_per_second": TARGET_RATE, "p99_ms": TARGET_P99_MS},
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
) -> dict[str, Any]:
    event = gateway.create_flash_sale(args.stock, title=f"Bench storm, {replicas} replica(s)")
    event_id, offer_id = event["id"], event["offers"][0]["id"]
    on_sale_after = gateway.wait_until_on_sale(event_id, args.stock)
    warm_up(profile, replicas, tokens[0], event_id)
    busy_before = wait_for_quiet(args.wait_quiet)
    print(
        f"   storm: {args.buyers:,} buyers, {args.stock:,} units, {args.duration:g}s "
        f"(wrk -t{args.threads} -c{args.connections})",
        flush=True,
    )
    access_log = GatewayLog(profile)
    meter = CpuMeter(profile)
    meter.start()
    result = run_wrk(
        BENCH / "orders.lua",
        profile.gateway,
        [
            str(profile.dir / "bench-tokens.txt"),
            offer_id,
            uuid.uuid4().hex[:8],
            str(args.threads),
            str(args.buyers),
            str(args.duration),
        ],
        threads=args.threads,
        connections=args.connections,
        limit=args.duration + STORM_GRACE,
    )
    cpu = meter.stop()
    at_gateway = access_log.durations("POST", "/api/purchase/orders")
    truth = read_truth(gateway, event_id)
    gateway.close_event(event_id)
    counts = result["counts"]
    seconds = result["duration_us"] / 1e6
    errors = counts["other"] + sum(result["socket_errors"].values())
    figures = {
        "event_id": event_id,
        "on_sale_after_s": round(on_sale_after, 2),
        "requests": result["requests"],
        "seconds": round(seconds, 2),
        "requests_per_second": round(result["requests"] / seconds),
        "buyers_reached": min(result["sent"], args.buyers),
        # -1: some buyer never tried (the storm hit its time limit first)
        "everyone_tried_after_s": round(result["everyone_after_s"], 2),
        "last_order_after_s": round(result["last_created_s"], 2),
        "latency_ms": {k: round(v / 1000, 2) for k, v in result["latency_us"].items()},
        # the gateway's own timing ($request_time) of the answers, by status
        "gateway_ms_by_status": {
            status: {
                "count": len(seconds),
                "p50": round(percentile(seconds, 50) * 1000, 1),
                "p99": round(percentile(seconds, 99) * 1000, 1),
            }
            for status, seconds in sorted(at_gateway.items())
        },
        "created": counts["created"],
        "conflicts": {
            code: counts[code]
            for code in ("sold_out", "limit_reached", "event_not_live", "conflict_other")
        },
        "rate_limited": counts["rate_limited"],
        "errors": errors,
        "other_statuses": result["other_statuses"],
        "socket_errors": result["socket_errors"],
        "busy_cores_before": round(busy_before, 2),
        "cpu_seconds": cpu,
        **truth,
    }
    checks = {
        "orders == stock": truth["orders"] == args.stock,
        "oversell == 0": truth["oversell"] == 0,
        "remaining + reserved + confirmed == stock": truth["balanced"],
        "201s == orders": counts["created"] == truth["orders"],
        "every buyer tried": result["sent"] >= args.buyers,
    }
    targets = {
        f"requests/s >= {TARGET_RATE}": figures["requests_per_second"] >= TARGET_RATE,
        f"p99 < {TARGET_P99_MS} ms": figures["latency_ms"]["p99"] < TARGET_P99_MS,
    }
    return {
        **figures,
        "checks": checks,
        "targets": targets,
        "correct": all(checks.values()),
    }


def warm_up(profile: stack.Profile, replicas: int, token: str, event_id: str) -> None:
    """Each replica fetches the JWKS and opens its pools before the storm, not during it."""
    for n in range(1, replicas + 1):
        base = f"http://127.0.0.1:{profile.replica_port('purchase', n)}/api/purchase"
        with httpx.Client(base_url=base, timeout=10) as client:
            for _ in range(20):
                client.get("/orders", headers={"Authorization": f"Bearer {token}"})
                client.get(f"/events/{event_id}/stock")


def read_truth(gateway: Gateway, event_id: str) -> dict[str, Any]:
    """What purchase says happened: its figures, its stock lines and its order list."""
    stats = gateway.admin("GET", f"/api/purchase/admin/stats?event_id={event_id}")
    lines = gateway.stock(event_id) or []
    listed = gateway.admin("GET", f"/api/purchase/admin/orders?event_id={event_id}&limit=1")
    sold = stats["reserved"] + stats["confirmed"]
    return {
        "orders": stats["orders"],
        "orders_listed": listed["total"],
        "stock": stats["stock"],
        "stock_left": sum(line["remaining"] for line in lines),
        "remaining": stats["remaining"],
        "reserved": stats["reserved"],
        "confirmed": stats["confirmed"],
        "oversell": max(0, sold - stats["stock"]),
        "balanced": stats["remaining"] + sold == stats["stock"],
        "stats": stats,
    }


# -------------------------------------------------------------------------------- the flow


def flow(gateway: Gateway, args: argparse.Namespace, tokens: list[str]) -> dict[str, Any]:
    """The flow buyers arrive evenly over a few seconds, each with a connection of their own:
    stock, order, confirm, each step waiting for the one before. They arrive spread out, not
    all at once, because the client shares the two cores with the platform: its own queueing
    would otherwise be most of what it measures (its CPU time is reported beside)."""
    stock = args.flow_buyers
    event = gateway.create_flash_sale(stock, title="Bench flow")
    event_id, offer_id = event["id"], event["offers"][0]["id"]
    gateway.wait_until_on_sale(event_id, stock)
    busy_before = wait_for_quiet(args.wait_quiet)
    print(
        f"   flow: {args.flow_buyers} buyers over {args.flow_seconds:g}s, "
        "stock -> order -> confirm",
        flush=True,
    )
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        outcomes = runner.run(
            flows(gateway.profile.gateway, tokens[: args.flow_buyers], event_id, offer_id, args)
        )
    wall = time.monotonic() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    truth = read_truth(gateway, event_id)
    gateway.close_event(event_id)
    done = [o for o in outcomes if o["confirmed"]]
    steps = {
        step: [o[step] for o in outcomes if step in o] for step in ("stock", "order", "confirm")
    }
    figures = {
        "event_id": event_id,
        "buyers": len(outcomes),
        "confirmed": len(done),
        "failures": sorted({o["failure"] for o in outcomes if "failure" in o}),
        "seconds": round(wall, 2),
        "busy_cores_before": round(busy_before, 2),
        "client_cpu_seconds": round(
            cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime,
            2,
        ),
        "flow_ms": {
            "p50": round(percentile([o["total"] for o in done], 50), 2),
            "p99": round(percentile([o["total"] for o in done], 99), 2),
        },
        "step_ms": {
            step: {"p50": round(percentile(v, 50), 2), "p99": round(percentile(v, 99), 2)}
            for step, v in steps.items()
        },
        "truth": {k: truth[k] for k in ("orders", "confirmed", "oversell", "balanced")},
    }
    figures["correct"] = (
        len(done) == stock and truth["confirmed"] == stock and truth["oversell"] == 0
    )
    return figures


def event_loop_factory() -> Any:
    """uvloop when the workspace has it (uvicorn[standard] brings it): a cheaper client."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def flows(
    gateway: str, tokens: list[str], event_id: str, offer_id: str, args: argparse.Namespace
) -> list[dict[str, Any]]:
    tls = ssl.create_default_context()  # built once: httpx would build one per client
    gap = args.flow_seconds / max(1, len(tokens))

    async def arrive(n: int, token: str) -> dict[str, Any]:
        await asyncio.sleep(n * gap)
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(
            base_url=gateway, limits=limits, timeout=30, verify=tls
        ) as client:
            return await buy(client, FLOW_ADDRESSES + n, token, event_id, offer_id)

    return await asyncio.gather(*(arrive(n, token) for n, token in enumerate(tokens)))


async def buy(
    client: httpx.AsyncClient, n: int, token: str, event_id: str, offer_id: str
) -> dict[str, Any]:
    """Buyer n's whole purchase; the milliseconds of each step, and of all three if it ends
    with a confirmed order."""
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": client_address(n)}
    outcome: dict[str, Any] = {"confirmed": False}
    started = time.perf_counter()

    async def step(name: str, method: str, path: str, expect: int, **kwargs) -> Any:
        before = time.perf_counter()
        sent = kwargs.pop("headers", headers)
        response = await client.request(method, path, headers=sent, **kwargs)
        outcome[name] = (time.perf_counter() - before) * 1000
        if response.status_code != expect:
            outcome["failure"] = f"{name}: {response.status_code}"
            return None
        return response.json()

    if await step("stock", "GET", f"/api/purchase/events/{event_id}/stock", 200) is None:
        return outcome
    order = await step(
        "order",
        "POST",
        "/api/purchase/orders",
        201,
        json={"offer_id": offer_id, "quantity": 1},
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    if order is None:
        return outcome
    if await step("confirm", "POST", f"/api/purchase/orders/{order['id']}/confirm", 200):
        outcome["confirmed"] = True
        outcome["total"] = (time.perf_counter() - started) * 1000
    return outcome


# ------------------------------------------------------------------------------ the report


def report(runs: list[dict]) -> None:
    print()
    print(
        table(
            [
                "scenario",
                "replicas",
                "requests/s",
                "p50 ms",
                "p99 ms",
                "201",
                "409",
                "429",
                "errors",
                "orders",
                "stock left",
                "oversell",
                "sold out s",
            ],
            [
                [
                    "flash-sale",
                    run["replicas"],
                    s["requests_per_second"],
                    s["latency_ms"]["p50"],
                    s["latency_ms"]["p99"],
                    s["created"],
                    sum(s["conflicts"].values()),
                    s["rate_limited"],
                    s["errors"],
                    s["orders"],
                    s["stock_left"],
                    s["oversell"],
                    s["last_order_after_s"],
                ]
                for run in runs
                for s in [run["storm"]]
            ],
        )
    )
    print()
    print(
        table(
            ["flow", "replicas", "buyers", "confirmed", "flow p50 ms", "flow p99 ms", "order p99"],
            [
                [
                    "stock > order > confirm",
                    run["replicas"],
                    f["buyers"],
                    f["confirmed"],
                    f["flow_ms"]["p50"],
                    f["flow_ms"]["p99"],
                    f["step_ms"]["order"]["p99"],
                ]
                for run in runs
                for f in [run["flow"]]
            ],
        )
    )
    print()
    for run in runs:
        s = run["storm"]
        failed = [name for name, ok in s["checks"].items() if not ok]
        missed = [name for name, ok in s["targets"].items() if not ok]
        if not run["flow"]["correct"]:
            failed.append(f"flow: {run['flow']['confirmed']}/{run['flow']['buyers']} confirmed")
        verdict = "correct" if not failed else "WRONG: " + ", ".join(failed)
        targets = "targets met" if not missed else "targets missed: " + ", ".join(missed)
        print(f"{run['replicas']} replica(s): {verdict}; {targets}")
        timing = ", ".join(
            f"{status}: p50 {t['p50']:,.0f} ms, p99 {t['p99']:,.0f} ms"
            for status, t in s["gateway_ms_by_status"].items()
        )
        print(f"   answers timed by the gateway, by status: {timing}")
        seconds = s["seconds"]
        busy = sorted(s["cpu_seconds"].items(), key=lambda item: -item[1])
        shares = ", ".join(f"{name} {cpu / seconds:.0%}" for name, cpu in busy if cpu >= 0.05)
        print(f"   CPU during the storm (one core = 100%, {os.cpu_count()} cores): {shares}")
