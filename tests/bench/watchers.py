"""Scenario `watchers`: 2,000 WebSocket watchers of one ranked session while bids arrive at 500/s.

For each count of bidding replicas (1 by default): a new live ranked session; 2,000 watchers
connect to `/ws/bidding/events/{id}` through the gateway, each with a token and a client
address of its own, held by a few recorder processes (watch.c, built with the machine's C
compiler: they share the two cores with the stack they measure, and record each frame with its
times in about 9 us of CPU where Python clients took 22 to 28); then a driver (asyncio, httpx,
a pool of bidders with addresses of their own) places 500 bids a second for 20 s at strictly
increasing prices, so that each accepted bid is the new top of the leaderboard, and notes when
each was sent and when its 201 came back. Each watcher notes when each leaderboard arrives
(when read, and when the kernel received it at the socket) and its top price, decoded after the
bids. Then the final leaderboard is read over HTTP and every watcher must end on it.

The delay of a bid for a watcher is the arrival of the first leaderboard whose top price is at
least the bid's (the bid, or a newer state), minus the bid's acceptance (the driver's 201).
Pushes are coalesced (at most ten a second per watcher, always the latest state) and 500 bids a
second each become the new top, so most bids are superseded before a push lists them: they
count as seen when a newer state is, which is what a watcher of the latest state experiences.
It is computed for every (watcher, accepted bid); beside it, the same from the bid's sending,
and the delay of the bids a watcher's leaderboards did list (newly listed prices only).
"""

import argparse
import asyncio
import itertools
import math
import multiprocessing
import resource
import struct
import subprocess
import tempfile
import time
import urllib.parse
from array import array
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import msgspec
from harness import (
    CpuMeter,
    Gateway,
    bench_users,
    cents_of,
    client_address,
    emails_due,
    money,
    percentile,
    revision,
    table,
    wait_for_idle_stack,
    wait_for_quiet,
)

import stack

TARGET_P99_MS = 250  # acceptance to a watcher seeing it
WATCHER_ADDRESSES = 1 << 22  # watchers' client addresses follow the bidders' (10.64.0.0 on)
UPSET_CENTS = 5000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--watchers", type=int, default=2_000, help="WebSocket watchers (2000)")
    parser.add_argument("--rate", type=float, default=500, help="bids per second (500)")
    parser.add_argument("--duration", type=float, default=20, help="seconds of bidding (20)")
    parser.add_argument(
        "--bidders",
        type=int,
        default=250,
        help="bidders taking turns (250: 2 bids/s each, under the gateway's 5 r/s per address)",
    )
    parser.add_argument(
        "--processes", type=int, default=2, help="processes the watchers are spread over (2)"
    )
    parser.add_argument("--replicas", default="1,2", help="bidding replicas, one run each (1,2)")
    parser.add_argument(
        "--settle",
        type=float,
        default=5,
        help="seconds the watchers are given, after the last bid, to reach the final state (5)",
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=240,
        help="seconds to wait, at most, for the stack's own background work to end before each "
        "run (240: after `ranked-storm`, the emails to its 5,000 bidders take a minute or more)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=60,
        help="seconds to wait, at most, for an idle machine before each run (60)",
    )


def run(profile: stack.Profile, args: argparse.Namespace) -> tuple[dict, bool]:
    gateway = Gateway(profile)
    code = revision()
    started = time.monotonic()
    tokens = bench_users(profile, args.bidders + args.watchers)
    users_seconds = time.monotonic() - started
    runs, last_run = [], -math.inf
    for replicas in [int(n) for n in args.replicas.split(",")]:
        print(f"\n-- {replicas} bidding replica(s)", flush=True)
        gateway.set_replicas("bidding", replicas)
        result = watch(gateway, profile, args, tokens, replicas, emails_due(last_run))
        last_run = time.monotonic()
        runs.append({"replicas": replicas, "watch": result})
    passed = all(run["watch"]["correct"] for run in runs)
    report(runs)
    document = {
        "parameters": {
            "watchers": args.watchers,
            "rate": args.rate,
            "duration_s": args.duration,
            "bidders": args.bidders,
            "processes": args.processes,
            "settle_s": args.settle,
            "wait_quiet_s": args.wait_quiet,
            "wait_idle_s": args.wait_idle,
        },
        "targets": {"delay_p99_ms": TARGET_P99_MS},
        "code": code,
        "bench_users_seconds": round(users_seconds, 2),
        "runs": runs,
        "passed": passed,
    }
    return document, passed


# --------------------------------------------------------------------------------- a run


def watch(
    gateway: Gateway,
    profile: stack.Profile,
    args: argparse.Namespace,
    tokens: list[str],
    replicas: int,
    emails_in: float = 0,
) -> dict[str, Any]:
    event = gateway.create_ranked(100, title=f"Bench watchers, {replicas} replica(s)")
    event_id, offer_id = event["id"], event["offers"][0]["id"]
    url = profile.gateway.replace("http://", "ws://") + f"/ws/bidding/events/{event_id}"
    watcher_tokens = tokens[args.bidders : args.bidders + args.watchers]
    stack_busy_before = wait_for_idle_stack(profile, args.wait_idle, at_least=emails_in)
    print(f"   {args.watchers:,} watchers connecting ({args.processes} processes)", flush=True)
    connect_started = time.monotonic()
    crowd = Crowd(recorder(), url, watcher_tokens, args.processes)
    ready = crowd.ready()
    connect_seconds = time.monotonic() - connect_started
    busy_before = wait_for_quiet(args.wait_quiet)
    print(
        f"   {ready['connected']:,} connected in {connect_seconds:.1f}s; "
        f"{args.rate:g} bids/s for {args.duration:g}s ({args.bidders} bidders)",
        flush=True,
    )
    meter = CpuMeter(profile)
    meter.start()
    crowd.mark()
    metered = time.monotonic()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        bids = runner.run(
            drive(profile.gateway, tokens[: args.bidders], offer_id, args.rate, args.duration)
        )
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = meter.stop()  # the watchers' processes show as `elsewhere` (not waited for yet)
    metered = time.monotonic() - metered
    accepted = sorted((b[0], b[1], b[2]) for b in bids if b[3] == 201)
    final = gateway.request("GET", f"/api/bidding/sessions/{offer_id}/leaderboard?limit=10")
    final_board = [(line["rank"], line["display_name"], line["price"]) for line in final]
    seen = crowd.finish(final_board, accepted, args.settle)
    # cancelled, not closed: settling it would make orders for 100 winners and email every
    # bidder, work that would only weigh on the next run
    gateway.cancel_event(event_id)

    statuses = Counter(b[3] for b in bids)
    first_send = min((b[1] for b in bids), default=0.0)
    last_answer = max((b[2] for b in bids), default=0.0)
    bid_ms = [(b[2] - b[1]) * 1000 for b in bids if b[3] == 201]
    figures = {
        "event_id": event_id,
        "offer_id": offer_id,
        "watchers": args.watchers,
        "processes": args.processes,
        "connected": ready["connected"],
        "connect_failures": ready["failures"],
        "connect_seconds": round(connect_seconds, 2),
        "connect_ms": ready["connect_ms"],
        "bids_sent": len(bids),
        "bids_accepted": len(accepted),
        "bid_statuses": {str(k): v for k, v in sorted(statuses.items(), key=str)},
        "bids_per_second": round(len(accepted) / max(1e-9, last_answer - first_send), 1),
        "bid_ms": {
            "p50": round(percentile(bid_ms, 50), 1),
            "p99": round(percentile(bid_ms, 99), 1),
        },
        "final_top_price": final[0]["price"] if final else None,
        "last_accepted_price": money(accepted[-1][0]) if accepted else None,
        **seen,
        "busy_cores_before": round(busy_before, 2),
        "stack_busy_cores_before": round(stack_busy_before, 2),
        "driver_cpu_seconds": round(
            cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime, 2
        ),
        "seconds": round(last_answer - first_send, 2),
        "metered_seconds": round(metered, 2),
        "cpu_seconds": cpu,
    }
    checks = {
        "every watcher connected": ready["connected"] == args.watchers,
        "every bid accepted": len(accepted) == len(bids),
        "final leaderboard tops at the last bid": bool(accepted)
        and bool(final)
        and cents_of(final[0]["price"]) == accepted[-1][0],
        "every watcher ends on the final state": seen["on_final_state"] == args.watchers,
        "no watcher dropped": seen["dropped"] == 0,
    }
    targets = {
        f"delay p99 < {TARGET_P99_MS} ms": seen["delay_ms"]["p99"] < TARGET_P99_MS,
        f"{args.rate:g} bids/s": figures["bids_per_second"] >= 0.95 * args.rate,
    }
    return {**figures, "checks": checks, "targets": targets, "correct": all(checks.values())}


def event_loop_factory() -> Any:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def hist_percentile(histogram: dict[int, int], p: float) -> float:
    """Nearest-rank percentile of a histogram of whole milliseconds."""
    total = sum(histogram.values())
    if not total:
        return 0.0
    rank, running = max(1, -(-total * p // 100)), 0
    for value in sorted(histogram):
        running += histogram[value]
        if running >= rank:
            return float(value)
    return float(max(histogram))


def summary(histogram: dict[int, int]) -> dict[str, float]:
    return {
        "count": sum(histogram.values()),
        "p50": hist_percentile(histogram, 50),
        "p90": hist_percentile(histogram, 90),
        "p99": hist_percentile(histogram, 99),
        "max": float(max(histogram, default=0)),
        "negative": sum(n for ms, n in histogram.items() if ms < 0),
    }


# ------------------------------------------------------------------------------ the driver


async def drive(
    gateway: str, tokens: list[str], offer_id: str, rate: float, duration: float
) -> list[tuple[int, float, float, int]]:
    """Bid j goes out at start + j/rate from bidder j mod len(tokens), each bidder one bid at a
    time on a keep-alive connection of their own; prices are given out in sending order, so
    they rise for each bidder and overall. (price in cents, sent, answered, status) per bid,
    status 0 for no answer; times are time.monotonic()."""
    total = int(rate * duration)
    prices = itertools.count(UPSET_CENTS + 100)
    address = httpx.URL(gateway)
    done: list[tuple[int, float, float, int]] = []
    start = time.monotonic() + 0.2

    async def bidder(n: int, token: str) -> None:
        head = (
            f"POST /api/bidding/sessions/{offer_id}/bids HTTP/1.1\r\n"
            f"Host: {address.host}:{address.port}\r\n"
            f"Authorization: Bearer {token}\r\n"
            f"X-Forwarded-For: {client_address(n)}\r\n"
            "Content-Type: application/json\r\n"
        )
        connection = Http(address.host, address.port or 80)
        try:
            for j in range(n, total, len(tokens)):
                wait = start + j / rate - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                cents = next(prices)
                body = f'{{"price":"{money(cents)}"}}'
                request = f"{head}Content-Length: {len(body)}\r\n\r\n{body}".encode()
                sent = time.monotonic()
                status = await connection.exchange(request)
                done.append((cents, sent, time.monotonic(), status))
        finally:
            connection.close()

    await asyncio.gather(*(bidder(n, token) for n, token in enumerate(tokens)))
    return done


class Http:
    """The least HTTP/1.1 client: one keep-alive connection, one request at a time, answers
    with a Content-Length (nginx's are). httpx costs milliseconds of CPU per request once a few
    hundred wait on one pool, which made the driver, not the platform, the bottleneck."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self, request: bytes) -> int:
        """The answer's status, 0 for none (the connection is then opened again next time)."""
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            self.writer.write(request)
            head = (await self.reader.readuntil(b"\r\n\r\n")).lower()
            length = int(head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            await self.reader.readexactly(length)
            if b"connection: close" in head:
                self.close()
            return int(head[9:12])
        except (OSError, EOFError, IndexError, ValueError, asyncio.IncompleteReadError):
            self.close()
            return 0

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


# ----------------------------------------------------------------------------- the crowd


class Crowd:
    """The watchers, spread over processes (forked: the bench's __main__ cannot be imported
    again), each running a recorder (watch.c) and reading its record; they talk to the bench
    over pipes."""

    def __init__(self, binary: Path, url: str, tokens: list[str], processes: int) -> None:
        context = multiprocessing.get_context("fork")
        self.pipes, self.processes = [], []
        for p in range(processes):
            mine = [(w, t) for w, t in enumerate(tokens) if w % processes == p]
            ours, theirs = context.Pipe()
            process = context.Process(
                target=crowd_main, args=(theirs, binary, url, mine), daemon=True
            )
            process.start()
            theirs.close()
            self.pipes.append(ours)
            self.processes.append(process)

    def ready(self) -> dict[str, Any]:
        """Once each process has every watcher connected (or failed) and on the first state."""
        reports = [pipe.recv() for pipe in self.pipes]
        connect_ms = [ms for r in reports for ms in r["connect_ms"]]
        return {
            "connected": sum(r["connected"] for r in reports),
            "failures": dict(sum((Counter(r["failures"]) for r in reports), Counter())),
            "connect_ms": {
                "p50": round(percentile(connect_ms, 50)),
                "p99": round(percentile(connect_ms, 99)),
            },
        }

    def mark(self) -> None:
        for pipe in self.pipes:
            pipe.send(("mark",))

    def finish(
        self, final: list[tuple], accepted: list[tuple[int, float, float]], settle: float
    ) -> dict[str, Any]:
        for pipe in self.pipes:
            pipe.send(("finish", final, accepted, settle))
        reports = [pipe.recv() for pipe in self.pipes]
        for process in self.processes:
            process.join(30)

        def merged(key: str) -> dict[int, int]:
            total: Counter[int] = Counter()
            for r in reports:
                total.update(r[key])
            return dict(total)

        converged = [ms for r in reports for ms in r["converged_ms"]]
        lags = [ms for r in reports for ms in r["read_lag_ms"]]
        return {
            "on_final_state": sum(r["on_final"] for r in reports),
            "dropped": sum(r["dropped"] for r in reports),
            "drop_reasons": dict(sum((Counter(r["drop_reasons"]) for r in reports), Counter())),
            "messages": dict(sum((Counter(r["messages"]) for r in reports), Counter())),
            "boards_per_watcher_per_second": round(
                sum(r["boards"] for r in reports)
                / max(1, sum(r["watchers"] for r in reports))
                / max(1e-9, max(r["window_s"] for r in reports)),
                2,
            ),
            "bids_never_seen": sum(r["never_seen"] for r in reports),
            "delay_ms": summary(merged("delay")),
            "delay_at_socket_ms": summary(merged("delay_at_socket")),
            "delay_from_send_ms": summary(merged("delay_from_send")),
            "listed_delay_ms": summary(merged("listed_delay")),
            "final_state_after_last_bid_ms": {
                "p50": round(percentile(converged, 50)),
                "p99": round(percentile(converged, 99)),
                "max": round(max(converged, default=0)),
            },
            "watcher_cpu_seconds": round(sum(r["cpu_seconds"] for r in reports), 2),
            "watcher_cpu_seconds_by_process": [round(r["cpu_seconds"], 2) for r in reports],
            "watcher_read_lag_ms": {
                "p50": round(percentile(lags, 50), 1),
                "p99": round(percentile(lags, 99), 1),
                "max": round(max(lags, default=0.0), 1),
            },
        }


class Line(msgspec.Struct):
    rank: int
    display_name: str
    price: str


class Session(msgspec.Struct):
    leaderboard: list[Line] = []


class Pushed(msgspec.Struct):
    """What a watcher reads of a message (the rest is skipped, not built: the crowd's CPU is
    the stack's CPU on this machine)."""

    type: str = ""
    leaderboard: list[Line] | None = None
    sessions: list[Session] = []


class Watcher:
    """One socket's record: when each leaderboard came (read, and at the socket) and its top
    price; prices newly listed."""

    __slots__ = ("arrivals", "at_socket", "closed", "lines", "listed", "listed_at", "top", "tops")

    def __init__(self) -> None:
        self.arrivals, self.at_socket, self.tops = array("d"), array("d"), array("q")
        self.listed, self.listed_at = array("q"), array("d")
        self.lines: list[Line] = []
        self.top = 0
        self.closed: str | None = None

    @property
    def board(self) -> list[tuple]:
        return [(line.rank, line.display_name, line.price) for line in self.lines]

    def saw(self, at: float, at_socket: float, leaderboard: list[Line]) -> None:
        self.lines = leaderboard
        prices = [int(line.price.replace(".", "")) for line in leaderboard]  # EUR: two decimals
        top = max(prices, default=0)
        for price in prices:
            if price > self.top:
                self.listed.append(price)
                self.listed_at.append(at)
        if top > self.top or not self.arrivals:  # the first: the state on connect
            self.top = max(top, self.top)
            self.arrivals.append(at)
            self.at_socket.append(at_socket)
            self.tops.append(top)


RECORDER_SOURCE = Path(__file__).with_name("watch.c")
RECORDED = struct.Struct("=c3xII4x2q")  # watch.c's `struct header`


def recorder() -> Path:
    """The watchers' recorder (watch.c), built with the machine's C compiler when older than
    its source."""
    binary = stack.BIN / "flashbid-watch"
    if not binary.exists() or binary.stat().st_mtime < RECORDER_SOURCE.stat().st_mtime:
        binary.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cc", "-O2", "-Wall", "-o", str(binary), str(RECORDER_SOURCE)], check=True)
    return binary


class Recording:
    """A recorder process holding some of the watchers' sockets, and what its record says so
    far. Frames are decoded here, when asked, never while the bids run."""

    def __init__(self, binary: Path, url: str, mine: list[tuple[int, str]], path: Path) -> None:
        parts = urllib.parse.urlsplit(url)
        self.path, self.offset = path, 0
        self.process = subprocess.Popen(
            [binary, parts.hostname, str(parts.port), parts.path, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.decode = msgspec.json.Decoder(Pushed).decode
        self.watchers: dict[int, Watcher] = {}
        self.began: dict[int, float] = {}
        self.connect_ms: list[float] = []
        self.failures: Counter[str] = Counter()
        self.messages: Counter[str] = Counter()
        self.read_lag_ms: list[float] = []  # from the socket to the recorder, once marked
        self.marked: float | None = None  # when the bids began
        self.last = 0.0  # the last frame read
        for w, token in mine:
            self.process.stdin.write(f"{w} {token} {client_address(WATCHER_ADDRESSES + w)}\n")
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        self.process.stdout.readline()  # "ready": every watcher on its first state, or failed

    def ask(self, command: str) -> str:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def mark(self) -> None:
        self.read()
        self.ask("mark")
        self.marked = time.monotonic()

    def read(self) -> None:
        """Decode what the recorder has written since the last call."""
        end = int(self.ask("flush").split()[1])
        with self.path.open("rb") as file:
            file.seek(self.offset)
            data = memoryview(file.read(end - self.offset))
        self.offset, at = end, 0
        while at < len(data):
            kind, w, length, read_ns, socket_ns = RECORDED.unpack_from(data, at)
            payload = data[at + RECORDED.size : at + RECORDED.size + length]
            at += RECORDED.size + length
            self.note(kind, w, payload, read_ns / 1e9, (socket_ns or read_ns) / 1e9)

    def note(self, kind: bytes, w: int, payload: memoryview, read: float, socket: float):
        if kind == b"B":
            self.began[w] = read
        elif kind == b"F":
            self.failures[bytes(payload).decode()] += 1
        elif kind == b"X":
            if w in self.watchers:
                self.watchers[w].closed = bytes(payload).decode()
        elif kind == b"S":
            # the server's messages are single frames (the recorder closes on a fragment)
            message = self.decode(payload)
            self.messages[message.type] += 1
            if self.marked is not None:
                self.read_lag_ms.append((read - socket) * 1000)
                self.last = read
            watcher = self.watchers.get(w)
            if watcher is None:  # the first frame: the state on connect, read only once
                watcher = self.watchers[w] = Watcher()  # all are connected: its time at the socket
                self.connect_ms.append((socket - self.began[w]) * 1000)
            if message.type == "state":
                watcher.saw(read, socket, message.sessions[0].leaderboard)
            elif message.type == "bid" and message.leaderboard is not None:
                watcher.saw(read, socket, message.leaderboard)

    def cpu_seconds(self) -> float:
        """The recorder's CPU since `mark`."""
        return float(self.ask("cpu").split()[1])

    def close(self) -> None:
        self.process.stdin.write("quit\n")
        self.process.stdin.close()
        self.process.wait(30)


def crowd_main(pipe, binary: Path, url: str, mine: list[tuple[int, str]]) -> None:
    with tempfile.TemporaryDirectory(prefix="flashbid-watchers-") as directory:
        recording = Recording(binary, url, mine, Path(directory) / "record")
        recording.read()
        watchers = recording.watchers
        pipe.send(
            {
                "connected": len(watchers),
                "failures": dict(recording.failures),
                "connect_ms": recording.connect_ms,
            }
        )
        pipe.recv()  # ("mark",): the bids begin
        recording.mark()
        _, final, accepted, settle = pipe.recv()
        converged = settle_on(recording, final, accepted, settle)
        cpu = recording.cpu_seconds()
        recording.close()
    pipe.send(
        {
            "watchers": len(watchers),
            "on_final": sum(1 for w in watchers.values() if w.board == final),
            "converged_ms": converged,
            "dropped": sum(1 for w in watchers.values() if w.closed) + len(mine) - len(watchers),
            "drop_reasons": dict(Counter(w.closed for w in watchers.values() if w.closed)),
            "messages": dict(recording.messages),
            "boards": sum(len(w.arrivals) for w in watchers.values()),
            "window_s": recording.last - recording.marked,
            "cpu_seconds": cpu,
            "read_lag_ms": recording.read_lag_ms,
            **delays(watchers, accepted),
        }
    )


def settle_on(
    recording: Recording, final: list[tuple], accepted: list[tuple], settle: float
) -> list[float]:
    """Wait up to `settle` seconds for every watcher to show the final leaderboard; for each
    watcher that does, the milliseconds from the last bid's 201 to the board that showed it."""
    deadline = time.monotonic() + settle
    watchers = recording.watchers
    while True:
        recording.read()
        if all(w.board == final for w in watchers.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    last = accepted[-1][2] if accepted else 0.0
    top = accepted[-1][0] if accepted else 0
    return [
        (w.arrivals[-1] - last) * 1000
        for w in watchers.values()
        if w.board == final and w.tops and w.tops[-1] == top
    ]


def delays(watchers: dict[int, Watcher], accepted: list[tuple[int, float, float]]) -> dict:
    """Histograms (whole milliseconds) of the delay of every accepted bid for every watcher:
    from its 201, and from its sending, to the first leaderboard whose top is at least its
    price, read by the watcher and at its socket (the kernel's receive time); and of the newly
    listed prices, from their 201 to the board that listed them."""
    delay: Counter[int] = Counter()
    at_socket: Counter[int] = Counter()
    from_send: Counter[int] = Counter()
    listed: Counter[int] = Counter()
    never = 0
    answered_at = {price: answered for price, _, answered in accepted}
    for watcher in watchers.values():
        j = 0
        # bids below the top of the first state seen (none: the bids start after) are skipped
        while j < len(accepted) and watcher.tops and accepted[j][0] <= watcher.tops[0]:
            j += 1
        boards = zip(watcher.arrivals[1:], watcher.at_socket[1:], watcher.tops[1:], strict=True)
        for at, came, top in boards:
            while j < len(accepted) and accepted[j][0] <= top:
                price, sent, answered = accepted[j]
                delay[round((at - answered) * 1000)] += 1
                at_socket[round((came - answered) * 1000)] += 1
                from_send[round((at - sent) * 1000)] += 1
                j += 1
        never += len(accepted) - j
        for price, at in zip(watcher.listed, watcher.listed_at, strict=True):
            if price in answered_at:
                listed[round((at - answered_at[price]) * 1000)] += 1
    return {
        "delay": dict(delay),
        "delay_at_socket": dict(at_socket),
        "delay_from_send": dict(from_send),
        "listed_delay": dict(listed),
        "never_seen": never,
    }


# ------------------------------------------------------------------------------ the report


def report(runs: list[dict]) -> None:
    print()
    print(
        table(
            [
                "watchers",
                "replicas",
                "connected",
                "bids/s",
                "bid p99 ms",
                "delay p50",
                "delay p99",
                "at socket p99",
                "from send p99",
                "listed p99",
                "on final state",
                "dropped",
            ],
            [
                [
                    "ranked session",
                    run["replicas"],
                    w["connected"],
                    w["bids_per_second"],
                    w["bid_ms"]["p99"],
                    w["delay_ms"]["p50"],
                    w["delay_ms"]["p99"],
                    w["delay_at_socket_ms"]["p99"],
                    w["delay_from_send_ms"]["p99"],
                    w["listed_delay_ms"]["p99"],
                    w["on_final_state"],
                    w["dropped"],
                ]
                for run in runs
                for w in [run["watch"]]
            ],
        )
    )
    print()
    for run in runs:
        w = run["watch"]
        failed = [name for name, ok in w["checks"].items() if not ok]
        missed = [name for name, ok in w["targets"].items() if not ok]
        verdict = "correct" if not failed else "WRONG: " + ", ".join(failed)
        targets = "targets met" if not missed else "targets missed: " + ", ".join(missed)
        print(f"{run['replicas']} replica(s): {verdict}; {targets}")
        print(
            f"   {w['delay_ms']['count']:,} (watcher, bid) pairs; messages {w['messages']}; "
            f"{w['boards_per_watcher_per_second']} new boards per watcher per second"
        )
        lag = w["watcher_read_lag_ms"]
        print(
            f"   watchers' recorders' CPU: {w['watcher_cpu_seconds_by_process']} s over "
            f"{w['seconds']} s of bids (a frame read {lag['p99']} ms after it came at p99, "
            f"{lag['max']} ms at most); driver {w['driver_cpu_seconds']} s"
        )
        seconds = max(1e-9, w["metered_seconds"])
        busy = sorted(w["cpu_seconds"].items(), key=lambda item: -item[1])
        shares = ", ".join(f"{name} {cpu / seconds:.0%}" for name, cpu in busy if cpu >= 0.05)
        print(f"   CPU during the bids (one core = 100%; watchers are `elsewhere`): {shares}")
