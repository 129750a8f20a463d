"""What every scenario of the bench uses: the bench stack, its gateway as an admin and as many
buyers, bulk users, wrk, and the figures."""

import ipaddress
import json
import math
import os
import resource
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for stack.py

import stack

BENCH = Path(__file__).resolve().parent
RESULTS = stack.ROOT / "bench-results"
WRK = "wrk"
# Buyers' addresses are 10.0.0.0/8 (one each, see orders.lua); the bench's own calls come from
# 10.255.0.0/16 so that they never share a rate-limit bucket with a buyer.
ADMIN_NETWORK = ipaddress.IPv4Network("10.255.0.0/16")


class BenchError(Exception):
    """The bench could not prepare or measure (not a failed target: those are figures)."""


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30.0) -> float:
    """Poll `check` until it holds; the seconds it took."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise BenchError(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.05)
    return time.monotonic() - started


class Gateway:
    """The bench stack's gateway, called as its admin (or anyone) from an address of its own."""

    def __init__(self, profile: stack.Profile) -> None:
        self.profile = profile
        self.http = self._client()
        self._addresses = iter(ADMIN_NETWORK.hosts())
        self._admin: tuple[str, float] | None = None

    def set_replicas(self, service: str, replicas: int) -> None:
        """`stack.set_replicas`, then new connections: nginx was reloaded, and its old workers
        close the idle keep-alive connections this client holds (a request on one was reset)."""
        stack.set_replicas(self.profile, service, replicas)
        self.http.close()
        self.http = self._client()

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.profile.gateway, timeout=30)

    def request(
        self, method: str, path: str, *, token: str | None = None, expect: int = 200, **kwargs
    ) -> Any:
        headers = {"X-Forwarded-For": str(next(self._addresses)), **kwargs.pop("headers", {})}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = self.http.request(method, path, headers=headers, **kwargs)
        if response.status_code != expect:
            raise BenchError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    def admin_token(self) -> str:
        """A fresh login when the last one is more than ten minutes old (tokens last 15)."""
        if self._admin is None or time.monotonic() - self._admin[1] > 600:
            body = {"login": "admin", "password": self.profile.admin_password}
            tokens = self.request("POST", "/api/auth/login", json=body)
            self._admin = (tokens["access_token"], time.monotonic())
        return self._admin[0]

    def admin(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        return self.request(method, path, token=self.admin_token(), json=body, expect=expect)

    def create_flash_sale(self, stock: int, per_user_limit: int = 1, title: str = "") -> dict:
        """A live flash sale of one new item, `stock` units; the event as catalog answers it."""
        return self._live_event(
            "flash_sale",
            title or f"Bench flash sale {uuid.uuid4().hex[:8]}",
            {"price": "19.99", "stock": stock, "per_user_limit": per_user_limit},
        )

    def create_ranked(self, inventory: int, title: str = "") -> dict:
        """A live ranked session of one new item (upset price 50.00, `inventory` units, the
        `weight` formula), that bidding knows about when this returns; the event as catalog
        answers it."""
        opened = self._live_event(
            "ranked",
            title or f"Bench ranked session {uuid.uuid4().hex[:8]}",
            {"upset_price": "50.00", "inventory": inventory},
            scoring={"formula": "weight", "alpha": 1.0, "beta": 10.0, "gamma": 1.0},
        )
        path = f"/api/catalog/admin/events/{opened['id']}"
        wait_for(
            f"bidding knowing event {opened['id']}",
            lambda: self.admin("GET", path)["synced_version"] >= opened["version"],
        )
        return opened

    def _live_event(self, kind: str, title: str, offer: dict, **extra: Any) -> dict:
        """An event of `kind` with one offer of a new item, published and opened at once."""
        item = self.admin(
            "POST",
            "/api/catalog/admin/items",
            {"name": f"Bench item {uuid.uuid4().hex[:8]}", "category": "bench"},
            expect=201,
        )
        now = datetime.now(UTC)
        event = self.admin(
            "POST",
            "/api/catalog/admin/events",
            {
                "kind": kind,
                "title": title,
                "starts_at": (now + timedelta(minutes=1)).isoformat(),
                "ends_at": (now + timedelta(hours=2)).isoformat(),
                "offers": [{"item_id": item["id"], **offer}],
                **extra,
            },
            expect=201,
        )
        path = f"/api/catalog/admin/events/{event['id']}"
        self.admin("POST", f"{path}/publish")
        return self.admin("POST", f"{path}/open")

    def results(self, event_id: str, timeout: float = 60) -> dict:
        """Bidding's results of an event once settled (read from PostgreSQL)."""
        found: dict = {}

        def settled() -> bool:
            found.update(self.request("GET", f"/api/bidding/events/{event_id}/results"))
            return bool(found.get("settled"))

        wait_for(f"event {event_id} settled", settled, timeout)
        return found

    def figures(self, event_id: str) -> dict | None:
        """The admin dashboard's figures of a live or recent event (bidding's count of the bids
        and of the bidders in PostgreSQL), None when they are not available."""
        for _ in range(10):
            board = self.admin("GET", "/api/catalog/admin/dashboard")
            for event in board["events"]:
                if event["id"] == event_id and event["figures_available"]:
                    return event["figures"]
            time.sleep(0.5)
        return None

    def stock(self, event_id: str) -> list[dict] | None:
        """Purchase's stock lines of an event, or None while it does not know the event."""
        response = self.http.get(
            f"/api/purchase/events/{event_id}/stock",
            headers={"X-Forwarded-For": str(next(self._addresses))},
        )
        return response.json() if response.status_code == 200 else None

    def wait_until_on_sale(self, event_id: str, stock: int) -> float:
        """Catalog pushes a live event to purchase within a second or so."""

        def on_sale() -> bool:
            lines = self.stock(event_id)
            return bool(lines) and sum(line["remaining"] for line in lines) == stock

        return wait_for(f"purchase selling event {event_id}", on_sale)

    def close_event(self, event_id: str, action: str = "close") -> None:
        """Best effort: a bench event that stays live would only cost the next runs a little."""
        try:
            self.admin("POST", f"/api/catalog/admin/events/{event_id}/{action}")
        except (BenchError, httpx.HTTPError):
            pass

    def cancel_event(self, event_id: str) -> None:
        """Best effort, as close_event; a cancelled event is not settled."""
        self.close_event(event_id, "cancel")


class GatewayLog:
    """The gateway's JSON access log from now on: nginx's own timing of each answer."""

    def __init__(self, profile: stack.Profile) -> None:
        self.path = profile.dir / "logs" / "gateway.log"
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def durations(self, method: str, uri: str) -> dict[int, list[float]]:
        """Seconds per answer to `method uri` since this object was made, by status."""
        found: dict[int, list[float]] = {}
        with self.path.open("rb") as log:
            log.seek(self.offset)
            for line in log:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a line being written
                if entry["method"] == method and entry["uri"] == uri:
                    found.setdefault(entry["status"], []).append(float(entry["duration"]))
        return found


def bench_users(profile: stack.Profile, count: int) -> list[str]:
    """`count` verified customers made in bulk by auth's `bench-users`; their access tokens."""
    path = profile.dir / "bench-tokens.txt"
    stack.manage(profile, "auth", "bench-users", str(count), str(path), quiet=False)
    tokens = path.read_text().split()
    if len(tokens) != count:
        raise BenchError(f"bench-users wrote {len(tokens)} tokens, not {count}")
    return tokens


def run_wrk(
    script: Path, url: str, args: list[str], *, threads: int, connections: int, limit: float
) -> dict:
    """wrk with a script whose done() prints `bench-result {json}`: that object. A script may
    end the run before `limit` seconds: once each thread has written `bench-thread-stopped` to
    stderr, wrk is interrupted (SIGINT), which ends its wait and makes it report."""
    command = [
        WRK,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{math.ceil(limit)}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(script),
        url,
        "--",
        *args,
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=BENCH
    )
    assert process.stderr is not None
    stopped, errors = 0, []
    for line in process.stderr:
        if line.strip() == "bench-thread-stopped":
            stopped += 1
            if stopped == threads:
                process.send_signal(signal.SIGINT)
                break
        else:
            errors.append(line)
    out, rest = process.communicate()
    for line in out.splitlines():
        if line.startswith("bench-result "):
            return json.loads(line.removeprefix("bench-result "))
    stderr = "".join(errors) + rest
    raise BenchError(f"wrk printed no result ({process.returncode}): {stderr[-2000:]}")


class CpuMeter:
    """CPU seconds each server of the stack (its whole process tree: nginx's and granian's
    workers, PostgreSQL's backends) and the load generator use between start() and stop(), and
    what the rest of the machine used meanwhile (`elsewhere`: another stack's tests, say)."""

    def __init__(self, profile: stack.Profile) -> None:
        run = profile.dir / "run"
        self.roots = {
            "gateway": [run / "nginx.pid"],
            "postgres": [profile.dir / "postgres" / "postmaster.pid"],
            "redis": [run / "redis.pid"],
            **{
                s: sorted(run.glob(f"{s}.pid")) + sorted(run.glob(f"{s}-*.pid"))
                for s in stack.SERVICES
            },
        }

    def start(self) -> None:
        self._before = self._sample()

    def stop(self) -> dict[str, float]:
        """Seconds per server; a process that ended meanwhile (a closed database backend) is
        missed, one that started is counted whole."""
        after = self._sample()
        used = {
            name: sum(t - self._before[name].get(pid, 0.0) for pid, t in pids.items())
            for name, pids in after.items()
        }
        machine = used.pop("machine")
        used["elsewhere"] = max(0.0, machine - sum(used.values()))
        return {name: round(seconds, 2) for name, seconds in used.items()}

    def _sample(self) -> dict[str, dict[int, float]]:
        tick = os.sysconf("SC_CLK_TCK")
        cpu: dict[int, float] = {}
        children: dict[int, list[int]] = {}
        for pid, fields in stack.processes():
            children.setdefault(int(fields[1]), []).append(pid)
            cpu[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime

        def tree(pid: int) -> dict[int, float]:
            found = {pid: cpu.get(pid, 0.0)}
            for child in children.get(pid, []):
                found |= tree(child)
            return found

        samples: dict[str, dict[int, float]] = {}
        for name, pid_files in self.roots.items():
            samples[name] = {}
            for pid in filter(None, map(stack.pid_alive, pid_files)):
                samples[name] |= tree(pid)
        own = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, once it has been waited for
        samples["load generator"] = {0: own.ru_utime + own.ru_stime}
        samples["machine"] = {0: busy_seconds()}
        return samples


def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy since boot (all but idle and iowait)."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(patience: float, busy_cores: float = 0.3) -> float:
    """Wait up to `patience` seconds for a second in which the machine (the idle bench stack
    included) keeps less than `busy_cores` busy: others' test runs would skew the figures.
    The last second's busy cores; the caller goes on either way."""
    deadline = time.monotonic() + patience
    said = False
    while True:
        before = busy_seconds()
        time.sleep(1)
        busy = busy_seconds() - before
        if busy < busy_cores or time.monotonic() > deadline:
            return busy
        if not said:
            print(f"   the machine is busy ({busy:.0%} of a core): waiting", flush=True)
            said = True


EMAILS_LATE = 90  # bidding emails the bidders pushed out of the winning ranks a minute late


def emails_due(last_run: float) -> float:
    """Seconds until the outbid emails of a run that ended at `last_run` (monotonic) are out:
    up to one per bidder, a minute after the bids. For `wait_for_idle_stack(at_least=...)`."""
    return max(0.0, EMAILS_LATE - (time.monotonic() - last_run))


def wait_for_idle_stack(
    profile: stack.Profile,
    patience: float,
    busy_cores: float = 0.2,
    seconds: int = 10,
    at_least: float = 0,
) -> float:
    """Wait up to `patience` seconds until the bench stack's own servers have kept less than
    `busy_cores` busy in most of the last `seconds` seconds (the median): their background
    work (an earlier run's settlement, emails to the bidders of a closed session, outbid emails
    sent a minute late) would skew the figures, and `wait_for_quiet` alone does not tell it from
    a neighbour's noise. The median, because some background work comes in short bursts every
    few seconds and never ends (bidding's reminders, retried follow-ups), while a backlog keeps
    every second busy. Never less than `at_least` seconds, for work known to come later. The
    last window's median busy cores; the caller goes on either way."""
    meter = CpuMeter(profile)
    earliest = time.monotonic() + at_least
    deadline = max(earliest, time.monotonic() + patience)
    said, window = False, []
    while True:
        meter.start()
        time.sleep(1)
        used = meter.stop()
        window = [
            *window[-(seconds - 1) :],
            sum(v for name, v in used.items() if name not in ("elsewhere", "load generator")),
        ]
        busy = sorted(window)[len(window) // 2]
        quiet = len(window) == seconds and busy < busy_cores
        if (quiet and time.monotonic() >= earliest) or time.monotonic() > deadline:
            return busy
        if not said and window[-1] >= busy_cores:
            print(f"   the stack is busy ({window[-1]:.0%} of a core): waiting", flush=True)
            said = True


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def cents_of(price: str) -> int:
    units, _, hundredths = price.partition(".")
    return int(units) * 100 + int(hundredths.ljust(2, "0")[:2])


def client_address(n: int) -> str:
    """Buyer n's address, 10.0.0.0 + n, as orders.lua makes it."""
    return str(ipaddress.IPv4Address("10.0.0.0") + n)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def revision() -> dict:
    """The code measured: the commit, and whether services/ or shared/ differ from it (others
    work on them while the bench runs; the stack runs what was on disk when it started)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=stack.ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "services_changed": bool(git("status", "--porcelain", "services", "shared")),
    }


def python_speed() -> float:
    """Milliseconds a fixed piece of pure Python takes (the median of five): this machine's
    speed changes from hour to hour (its cores are shared), and two runs' figures compare only
    alongside it."""

    def work() -> None:
        counts: dict[str, int] = {}
        for n in range(200_000):
            key = f"k{n % 1000}"
            counts[key] = counts.get(key, 0) + n

    times = []
    for _ in range(5):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return round(sorted(times)[2] * 1000, 1)


def machine() -> dict:
    uname = os.uname()
    return {
        "cpus": os.cpu_count(),
        "system": f"{uname.sysname} {uname.release} {uname.machine}",
        "python": sys.version.split()[0],
    }


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain text table, numbers right-aligned."""
    cells = [[format_cell(value) for value in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], int | float) for row in rows) for i in range(len(headers))]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join(
        [line(headers), line(["-" * w for w in widths]), *(line(row) for row in cells)]
    )


def format_cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def write_results(scenario: str, document: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{scenario}-{stamp}.json"
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path
