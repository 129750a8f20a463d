#!/usr/bin/env python3
"""Flashbid's local platform without Docker: install what is missing, start, stop, inspect.

    python3 tests/stack.py up|down|status|logs [name] [--profile dev|test|bench]
                           [--purchase-replicas N]          (options before or after)
    python3 tests/stack.py around --profile test|bench COMMAND...   (up, COMMAND, down)

Every server runs on 127.0.0.1 from `.state/<profile>/` (git-ignored) and is stopped by the PID
it was started with, so nothing here touches system services. The `test` and `bench` profiles
use other ports and other folders, so the test suite and the load bench can run while a
development stack is up; the bench keeps PostgreSQL's normal durability, the test stack does
not. Purchase can run as several replicas behind the gateway (ports 8004, 8014, 8024, ... in
dev). Only the standard library is used: this file runs before the Python workspace exists.
"""

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".state"
BIN = STATE / "bin"
VENV_BIN = ROOT / ".venv" / "bin"

FERRETDB_VERSION = "v1.24.2"
MAILPIT_VERSION = "v1.27.11"
DEBIAN_PACKAGES = {"postgres": "postgresql", "redis-server": "redis-server", "nginx": "nginx"}
SERVICES = ("auth", "catalog", "bidding", "purchase", "reviews")
POSTGRES_SERVICES = ("auth", "catalog", "bidding", "purchase")

DEFAULT_PORTS = {
    "dev": {
        "gateway": 8080,
        "auth": 8001,
        "catalog": 8002,
        "bidding": 8003,
        "purchase": 8004,
        "reviews": 8005,
        "mailpit": 8025,
        "smtp": 1025,
        "postgres": 15432,
        "redis": 16379,
        "ferretdb": 17017,
    },
    "test": {
        "gateway": 18080,
        "auth": 18001,
        "catalog": 18002,
        "bidding": 18003,
        "purchase": 18004,
        "reviews": 18005,
        "mailpit": 18025,
        "smtp": 11025,
        "postgres": 15442,
        "redis": 16389,
        "ferretdb": 17027,
    },
    "bench": {
        "gateway": 28080,
        "auth": 28001,
        "catalog": 28002,
        "bidding": 28003,
        "purchase": 28004,
        "reviews": 28005,
        "mailpit": 28025,
        "smtp": 21025,
        "postgres": 15452,
        "redis": 16399,
        "ferretdb": 17037,
    },
}
REPLICA_PORT_STEP = 10  # replica n of a service listens on its port + 10·(n-1)


@dataclass
class Profile:
    """Where one stack lives. Ports come from FLASHBID_<NAME>_PORT (dev) or
    FLASHBID_<PROFILE>_<NAME>_PORT (test, bench); the gateway trusts X-Forwarded-For only from
    FLASHBID_TRUSTED_PROXY (default: nobody in dev, loopback in test and bench, where each
    simulated client presents its own address)."""

    name: str
    ports: dict[str, int] = field(default_factory=dict)
    trusted_proxy: str = "unix:"
    admin_password: str = ""  # empty: the first admin's password is made and printed once

    @classmethod
    def load(cls, name: str) -> "Profile":
        prefix = env_prefix(name)
        ports = {
            key: int(os.environ.get(f"{prefix}{key.upper()}_PORT", default))
            for key, default in DEFAULT_PORTS[name].items()
        }
        trusted = "unix:" if name == "dev" else "127.0.0.1"
        admin_password = "" if name == "dev" else f"{name}-root-passphrase-1"
        return cls(
            name,
            ports,
            os.environ.get(f"{prefix}TRUSTED_PROXY", trusted),
            os.environ.get(f"{prefix}ADMIN_PASSWORD", admin_password),
        )

    @property
    def dir(self) -> Path:
        return STATE / self.name

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def replica_port(self, service: str, n: int) -> int:
        return self.ports[service] + REPLICA_PORT_STEP * (n - 1)

    def replicas(self, service: str) -> int:
        """How many replicas of `service` were started (their PID files)."""
        return 1 + len(list((self.dir / "run").glob(f"{service}-*.pid")))

    def database_url(self, database: str) -> str:
        return f"postgresql+asyncpg://flashbid@127.0.0.1:{self.ports['postgres']}/{database}"

    def service_env(self, service: str) -> dict[str, str]:
        """The environment a service runs with: every variable its Settings reads."""
        env = {
            "AUTH_URL": self.url("auth"),
            "CATALOG_URL": self.url("catalog"),
            "BIDDING_URL": self.url("bidding"),
            "PURCHASE_URL": self.url("purchase"),
            "LOG_LEVEL": "INFO",
        }
        if service in POSTGRES_SERVICES:
            env["DATABASE_URL"] = self.database_url(f"flashbid_{service}")
        if service == "bidding":
            env["REDIS_URL"] = f"redis://127.0.0.1:{self.ports['redis']}/0"
        if service == "purchase":
            env["REDIS_URL"] = f"redis://127.0.0.1:{self.ports['redis']}/1"
        if service == "reviews":
            env["MONGO_URL"] = f"mongodb://127.0.0.1:{self.ports['ferretdb']}/"
        if service in ("auth", "bidding"):
            env["PUBLIC_URL"] = self.gateway  # links in emails
        if service == "auth":
            env["SMTP_HOST"] = "127.0.0.1"
            env["SMTP_PORT"] = str(self.ports["smtp"])
            if self.admin_password:
                env["ADMIN_PASSWORD"] = self.admin_password
        return env


# ---------------------------------------------------------------------------------- helpers


def env_prefix(profile: str) -> str:
    return "FLASHBID_" if profile == "dev" else f"FLASHBID_{profile.upper()}_"


def process_name(service: str, n: int) -> str:
    """Replica 1 is `purchase` (its PID file and log), the others `purchase-2`, ..."""
    return service if n == 1 else f"{service}-{n}"


def say(message: str) -> None:
    print(f"flashbid: {message}", flush=True)


def fail(message: str) -> NoReturn:
    print(f"flashbid: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def run(*cmd: str | Path, user: str | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], check=True, user=user, **kwargs)


def port_open(port: int) -> bool:
    """Whether something listens on `port`. A connection to a port in Linux's ephemeral range
    (32768-60999) that nobody listens on can be given that port as its own and connect to
    itself: that once made `up` take a stopped PostgreSQL (then on 55452) for a running one."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0 and sock.getsockname()[1] != port


def wait_until(what: str, ready, timeout: float = 60.0, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.1)
    tail = ""
    if log and log.exists():
        tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    fail(f"{what} did not become ready within {timeout:.0f}s{tail}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def pid_alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def spawn(profile: Profile, name: str, cmd: list[str], env: dict[str, str] | None = None) -> None:
    """Start a long-running process in its own session, logging to logs/<name>.log."""
    pid_file = profile.dir / "run" / f"{name}.pid"
    if pid_alive(pid_file):
        return
    log = (profile.dir / "logs" / f"{name}.log").open("ab")
    process = subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    pid_file.write_text(str(process.pid))


def processes() -> Iterator[tuple[int, list[str]]]:
    """(pid, the fields of /proc/<pid>/stat after the command's name) of every process:
    fields[1] is the parent's pid, fields[11] and [12] the user and system CPU ticks."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            yield int(stat.parent.name), stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile


def children(pid: int) -> set[int]:
    return {child for child, fields in processes() if int(fields[1]) == pid}


def stop_pid(pid_file: Path, timeout: float = 10.0) -> None:
    pid = pid_alive(pid_file)
    if pid:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(pid_file):
            time.sleep(0.05)
        if pid_alive(pid_file):  # with its workers, which would outlive it (granian's do)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)  # its session's group (see `spawn`)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


def postgres_bin() -> Path:
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3])
    )
    if not versions:
        fail("PostgreSQL is not installed and could not be installed")
    return versions[-1].parent


def as_postgres_user() -> str | None:
    """PostgreSQL refuses to run as root; as root we run it as the `postgres` system user."""
    return "postgres" if os.geteuid() == 0 else None


# ------------------------------------------------------------------------------- installing


def install(profile: "Profile | None" = None) -> None:
    wanted = dict(DEBIAN_PACKAGES)
    if profile is not None and profile.name == "bench":
        wanted["wrk"] = "wrk"  # the bench's load generator (LuaJIT scripts)
        wanted["cc"] = "gcc"  # builds the bench's WebSocket watchers (tests/bench/watch.c)
    missing = [pkg for binary, pkg in wanted.items() if not has_binary(binary)]
    if missing:
        if os.geteuid() != 0:
            fail(f"missing Debian packages: {' '.join(missing)} (install them, or run as root)")
        say(f"installing Debian packages: {' '.join(missing)}")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run("apt-get", "update", "-q", env=env, stdout=subprocess.DEVNULL)
        run(
            "apt-get",
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            *missing,
            env=env,
            stdout=subprocess.DEVNULL,
        )
    if not (BIN / "ferretdb").exists() or not (BIN / "mailpit").exists():
        go = shutil.which("go") or (
            "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
        )
        if go is None:
            fail(
                "the Go toolchain is missing: FerretDB and Mailpit are built from source with Go.\n"
                "Install Go 1.22 or newer (https://go.dev/dl/ or `apt-get install golang`) and "
                "run this again."
            )
        BIN.mkdir(parents=True, exist_ok=True)
        if not (BIN / "ferretdb").exists():
            build_ferretdb(go)
        if not (BIN / "mailpit").exists():
            say(f"building Mailpit {MAILPIT_VERSION} (once)")
            run(
                go,
                "install",
                f"github.com/axllent/mailpit@{MAILPIT_VERSION}",
                env={**os.environ, "GOBIN": str(BIN)},
            )
    synced = ROOT / ".venv" / ".flashbid-synced"
    if not synced.exists() or newer(ROOT / "uv.lock", synced):
        uv = shutil.which("uv")
        if uv is None:
            say("installing uv")
            run(sys.executable, "-m", "pip", "install", "-q", "uv")
            uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
        say("installing the Python workspace")
        run(uv, "sync", "--frozen", "--quiet", cwd=ROOT)
        synced.touch()


def has_binary(name: str) -> bool:
    if name == "postgres":
        return any(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return shutil.which(name) is not None or Path("/usr/sbin", name).exists()


def newer(a: Path, b: Path) -> bool:
    return a.stat().st_mtime > b.stat().st_mtime


def build_ferretdb(go: str) -> None:
    """`go install ...ferretdb@v1.24.2` builds a binary that panics on its missing version file,
    so we build upstream's own module (its go.mod and go.sum, untouched) with that file written."""
    say(f"building FerretDB {FERRETDB_VERSION} (once, a minute or two)")
    info = subprocess.run(
        [go, "mod", "download", "-json", f"github.com/FerretDB/FerretDB@{FERRETDB_VERSION}"],
        check=True,
        capture_output=True,
        text=True,
        cwd="/",
    )
    source = STATE / "build" / "ferretdb"
    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(json.loads(info.stdout)["Dir"], source)
    for path in source.rglob("*"):
        path.chmod(path.stat().st_mode | 0o200)
    (source / "build" / "version" / "version.txt").write_text(FERRETDB_VERSION + "\n")
    run(go, "build", "-o", BIN / "ferretdb", "./cmd/ferretdb", cwd=source)
    shutil.rmtree(source, ignore_errors=True)


# -------------------------------------------------------------------------------- servers


def start_postgres(profile: Profile) -> None:
    pg = postgres_bin()
    data = profile.dir / "postgres"
    user = as_postgres_user()
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        if user:
            shutil.chown(data, user, user)
        run(
            pg / "initdb",
            "-D",
            data,
            "-U",
            "flashbid",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            user=user,
            stdout=subprocess.DEVNULL,
        )
    port = profile.ports["postgres"]
    if not port_open(port):
        log = profile.dir / "logs" / "postgres.log"
        log.touch()
        if user:
            shutil.chown(log, user, user)
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='{data}'"
            " -c max_connections=400 -c shared_buffers=256MB"
        )
        if profile.name == "test":
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        run(
            pg / "pg_ctl",
            "-D",
            data,
            "-l",
            log,
            "-o",
            options,
            "-w",
            "start",
            user=user,
            stdout=subprocess.DEVNULL,
        )
    existing = psql(profile, "SELECT datname FROM pg_database").split()
    for database in [*(f"flashbid_{s}" for s in POSTGRES_SERVICES), "flashbid_ferretdb"]:
        if database not in existing:
            psql(profile, f"CREATE DATABASE {database}")


def psql(profile: Profile, sql: str, database: str = "postgres") -> str:
    return run(
        postgres_bin() / "psql",
        "-h",
        "127.0.0.1",
        "-p",
        str(profile.ports["postgres"]),
        "-U",
        "flashbid",
        "-d",
        database,
        "-Atqc",
        sql,
        capture_output=True,
        text=True,
    ).stdout


def start_redis(profile: Profile) -> None:
    folder = profile.dir / "redis"
    folder.mkdir(exist_ok=True)
    port = profile.ports["redis"]
    if not port_open(port):
        run(
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--daemonize",
            "yes",
            "--pidfile",
            profile.dir / "run" / "redis.pid",
            "--dir",
            folder,
            "--logfile",
            profile.dir / "logs" / "redis.log",
            "--save",
            "",
            "--appendonly",
            "no",
        )
    wait_until("Redis", lambda: port_open(port), 10)


def start_ferretdb(profile: Profile) -> None:
    port = profile.ports["ferretdb"]
    folder = profile.dir / "ferretdb"
    folder.mkdir(exist_ok=True)
    spawn(
        profile,
        "ferretdb",
        [
            str(BIN / "ferretdb"),
            f"--listen-addr=127.0.0.1:{port}",
            "--handler=postgresql",
            f"--postgresql-url=postgres://flashbid@127.0.0.1:{profile.ports['postgres']}/flashbid_ferretdb",
            f"--state-dir={folder}",
            f"--debug-addr=127.0.0.1:{port + 1}",
            "--telemetry=disable",
            "--log-format=json",
            "--log-level=WARN",
        ],
    )


def start_mailpit(profile: Profile) -> None:
    spawn(
        profile,
        "mailpit",
        [
            str(BIN / "mailpit"),
            "--listen",
            f"127.0.0.1:{profile.ports['mailpit']}",
            "--smtp",
            f"127.0.0.1:{profile.ports['smtp']}",
            "--smtp-auth-accept-any",
            "--smtp-auth-allow-insecure",
            "--database",
            str(profile.dir / "mailpit.db"),
            "--quiet",
        ],
    )


def manage(profile: Profile, service: str, command: str, *args: str, quiet: bool = True) -> None:
    """`python -m flashbid_<service> <command> [args]` with the service's environment."""
    run(
        VENV_BIN / "python",
        "-m",
        f"flashbid_{service}",
        command,
        *args,
        env={**os.environ, **profile.service_env(service)},
        stdout=subprocess.DEVNULL if quiet else None,
    )


def migrate(profile: Profile) -> None:
    for service in SERVICES:
        manage(profile, service, "migrate")
    manage(profile, "auth", "create-admin", quiet=False)


def seed(profile: Profile) -> None:
    say("creating demo data")
    manage(profile, "auth", "seed", quiet=False)
    manage(profile, "catalog", "seed", quiet=False)


def start_services(profile: Profile, purchase_replicas: int = 1) -> None:
    for service in SERVICES:
        start_service(profile, service, 1)
    scale(profile, "purchase", purchase_replicas)


def start_service(profile: Profile, service: str, n: int) -> None:
    port = profile.replica_port(service, n)
    if n > 1 and port_open(port) and not pid_alive(profile.dir / "run" / f"{service}-{n}.pid"):
        fail(f"port {port} (replica {n} of {service}) is taken by a process we did not start")
    spawn(
        profile,
        process_name(service, n),
        [
            str(VENV_BIN / "granian"),
            "--interface",
            "asgi",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
            f"flashbid_{service}.app:create_app",
        ],
        env=profile.service_env(service),
    )


def scale(profile: Profile, service: str, replicas: int) -> None:
    """Start replicas 2..N of a service that runs, stop those above N. The gateway's upstream
    follows when nginx is (re)started or reloaded, which `set_replicas` does."""
    for n in range(2, replicas + 1):
        start_service(profile, service, n)
    for pid_file in (profile.dir / "run").glob(f"{service}-*.pid"):
        if int(pid_file.stem.rsplit("-", 1)[1]) > replicas:
            stop_pid(pid_file)


def set_replicas(profile: Profile, service: str, replicas: int) -> None:
    """Run N replicas of a service of a running stack behind the gateway, ready when this
    returns (the bench goes from one purchase replica to two this way)."""
    scale(profile, service, replicas)
    for n in range(1, replicas + 1):
        port = profile.replica_port(service, n)
        wait_until(
            f"{process_name(service, n)} (port {port})",
            lambda p=port: http_ok(f"http://127.0.0.1:{p}/api/{service}/health/ready"),
            60,
            profile.dir / "logs" / f"{process_name(service, n)}.log",
        )
    start_nginx(profile)


def render_nginx(profile: Profile) -> Path:
    """nginx/flashbid.conf.template is also what compose.yaml mounts; only `${NAME}`s we know
    are replaced, as the official nginx image's envsubst does."""
    folder = profile.dir / "nginx"
    for sub in ("temp", "logs", "cache"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    values = {
        "GATEWAY_PORT": str(profile.ports["gateway"]),
        "GATEWAY_ROOT": str(ROOT / "gateway"),
        "TRUSTED_PROXY": profile.trusted_proxy,
        "ACCESS_LOG": str(profile.dir / "logs" / "gateway.log"),
        "CACHE_DIR": str(folder / "cache"),
        **{f"{s.upper()}_SERVERS": upstream_servers(profile, s) for s in SERVICES},
    }
    text = (ROOT / "nginx" / "flashbid.conf.template").read_text()
    for key, value in values.items():
        text = text.replace("${" + key + "}", value)
    (folder / "flashbid.conf").write_text(text)
    user = "user root;" if os.geteuid() == 0 else ""
    main = (ROOT / "nginx" / "nginx.conf").read_text()
    main = main.replace("${USER_DIRECTIVE}", user).replace("${STATE}", str(folder))
    main = main.replace("${ERROR_LOG}", str(profile.dir / "logs" / "gateway-error.log"))
    (folder / "nginx.conf").write_text(main)
    return folder / "nginx.conf"


def upstream_servers(profile: Profile, service: str) -> str:
    """`server 127.0.0.1:8004; server 127.0.0.1:8014;`: one line per running replica."""
    ports = (profile.replica_port(service, n) for n in range(1, profile.replicas(service) + 1))
    return " ".join(f"server 127.0.0.1:{port};" for port in ports)


def start_nginx(profile: Profile) -> None:
    config = render_nginx(profile)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    run(nginx, "-t", "-q", "-p", profile.dir / "nginx", "-c", config)
    master = pid_alive(profile.dir / "run" / "nginx.pid")
    if master:
        # -e: the "signal process started" notice goes to the gateway's log, not the terminal
        error_log = profile.dir / "logs" / "gateway-error.log"
        old_workers = children(master)
        run(nginx, "-p", profile.dir / "nginx", "-c", config, "-e", error_log, "-s", "reload")
        # Done when the old workers are gone: until then one may still take a connection and
        # then close it as it leaves (a client's next request on it is reset). A WebSocket
        # keeps its worker alive; that one is not waited for past a few seconds.
        deadline = time.monotonic() + 5
        while old_workers & children(master) and time.monotonic() < deadline:
            time.sleep(0.05)
    else:
        run(nginx, "-p", profile.dir / "nginx", "-c", config)


# -------------------------------------------------------------------------------- commands


def up(profile: Profile, purchase_replicas: int = 1) -> None:
    started = time.monotonic()
    install(profile)
    for sub in ("run", "logs"):
        (profile.dir / sub).mkdir(parents=True, exist_ok=True)
    check_ports_free(profile)
    say(f"starting the {profile.name} stack in {profile.dir.relative_to(ROOT)}")
    start_postgres(profile)
    start_redis(profile)
    start_ferretdb(profile)
    start_mailpit(profile)
    logs = profile.dir / "logs"
    wait_until("FerretDB", lambda: port_open(profile.ports["ferretdb"]), 30, logs / "ferretdb.log")
    wait_until(
        "Mailpit", lambda: http_ok(f"{profile.url('mailpit')}/livez"), 30, logs / "mailpit.log"
    )
    migrate(profile)
    start_services(profile, purchase_replicas)
    start_nginx(profile)
    for service in SERVICES:
        wait_until(
            f"{service} (through the gateway)",
            lambda s=service: http_ok(f"{profile.gateway}/api/{s}/health/ready"),
            60,
            logs / f"{service}.log",
        )
    if purchase_replicas > 1:
        set_replicas(profile, "purchase", purchase_replicas)  # each replica ready, not just one
    if profile.name == "dev":
        seed(profile)  # each part skips what is already there
    say(f"up in {time.monotonic() - started:.1f}s")
    print(f"\n  gateway      {profile.gateway}/")
    for service in SERVICES:
        print(f"  {service:<12} {profile.gateway}/api/{service}/docs")
    print(f"  inbox        {profile.url('mailpit')}/\n")


def around(profile: Profile, command: list[str]) -> int:
    """Start the stack, run `command`, stop the stack; its exit status. Only one at a time per
    profile and ports on this machine: a second `just bench` started while the first's stack
    was still stopping found its PostgreSQL port open, did not start its own, then lost it."""
    lock_name = f"flashbid-{profile.name}-{profile.ports['gateway']}.lock"
    with open(Path(tempfile.gettempdir()) / lock_name, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fail(f"a {profile.name} stack is already in use on this machine; wait for it to end")
        try:
            # `up` in a process of its own: the servers must not be children of this one, or
            # once stopped they would stay as zombies, alive to `down`, until it gave up.
            started = subprocess.call([sys.executable, __file__, "--profile", profile.name, "up"])
            if started:
                return started
            child = subprocess.Popen(command)
            while True:
                try:
                    return child.wait()
                except KeyboardInterrupt:  # Ctrl-C reaches the command too: let it finish
                    pass
        finally:
            down(profile)


def check_ports_free(profile: Profile) -> None:
    """A port in use by something we did not start would make us talk to a stranger."""
    ours = {
        "postgres": (profile.dir / "postgres" / "postmaster.pid"),
        "redis": profile.dir / "run" / "redis.pid",
        "ferretdb": profile.dir / "run" / "ferretdb.pid",
        "mailpit": profile.dir / "run" / "mailpit.pid",
        "smtp": profile.dir / "run" / "mailpit.pid",
        "gateway": profile.dir / "run" / "nginx.pid",
        **{s: profile.dir / "run" / f"{s}.pid" for s in SERVICES},
    }
    for name, port in profile.ports.items():
        if port_open(port) and not pid_alive(ours[name]):
            fail(
                f"port {port} ({name}) is taken by a process this stack did not start; "
                f"choose another with {env_prefix(profile.name)}{name.upper()}_PORT"
            )


def down(profile: Profile) -> None:
    run_dir = profile.dir / "run"
    nginx_pid = run_dir / "nginx.pid"
    for pid_file in run_dir.glob("*-*.pid"):  # replicas 2..N
        stop_pid(pid_file)
    for name in (*reversed(SERVICES), "ferretdb", "mailpit", "redis"):  # callers before auth
        stop_pid(run_dir / f"{name}.pid")
    stop_pid(nginx_pid)
    data = profile.dir / "postgres"
    if (data / "postmaster.pid").exists():
        run(
            postgres_bin() / "pg_ctl",
            "-D",
            data,
            "-m",
            "fast",
            "-w",
            "stop",
            user=as_postgres_user(),
            stdout=subprocess.DEVNULL,
        )
    say(f"the {profile.name} stack is stopped")


def status(profile: Profile) -> None:
    run_dir = profile.dir / "run"
    pid_files = {
        "postgres": profile.dir / "postgres" / "postmaster.pid",
        "redis": run_dir / "redis.pid",
        "ferretdb": run_dir / "ferretdb.pid",
        "mailpit": run_dir / "mailpit.pid",
        "gateway": run_dir / "nginx.pid",
    }
    ports = {name: profile.ports[name] for name in pid_files}
    for service in SERVICES:
        for n in range(1, profile.replicas(service) + 1):
            name = process_name(service, n)
            pid_files[name] = run_dir / f"{name}.pid"
            ports[name] = profile.replica_port(service, n)
    for name, pid_file in pid_files.items():
        pid = pid_alive(pid_file)
        port = ports[name]
        health = ""
        service = name.split("-")[0]
        if service in SERVICES:
            ready = http_ok(f"http://127.0.0.1:{port}/api/{service}/health/ready")
            health = "ready" if ready else "not ready"
        state = f"running (pid {pid})" if pid else "stopped"
        print(f"{name:<10} {port:>6}  {state:<22} {health}")


def logs(profile: Profile, name: str | None) -> None:
    folder = profile.dir / "logs"
    files = [folder / f"{name}.log"] if name else sorted(folder.glob("*.log"))
    os.execvp("tail", ["tail", "-n", "50", "-F", *map(str, files)])


COMMANDS = ("up", "down", "status", "logs", "install", "env", "seed", "around")
NAMED = ("logs", "env")  # the commands that take a name
OPTIONS = ("--profile", "--purchase-replicas")


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line, its options before or after the command (`up --profile bench` is the
    bench's stack; it once was the development stack's, the option taken as an argument and
    ignored). A word or an option that fits nowhere is an error, never another stack. After
    `around`, our options may come first; the rest is the command it runs, left untouched."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("name", nargs="?", help="logs, env: a server or service")
    parser.add_argument("--profile", default="dev", choices=sorted(DEFAULT_PORTS))
    parser.add_argument(
        "--purchase-replicas", type=int, default=1, help="purchase servers behind the gateway"
    )
    ours, theirs = list(argv), []
    if "around" in ours:
        at = ours.index("around") + 1
        ours, theirs = ours[:at], ours[at:]
        while theirs and theirs[0].split("=", 1)[0] in OPTIONS:
            taken = 1 if "=" in theirs[0] else 2
            ours, theirs = ours + theirs[:taken], theirs[taken:]
    args = parser.parse_args(ours)
    args.rest = theirs
    if args.command == "around" and not theirs:
        parser.error("around: give the command to run")
    if args.name is not None and args.command not in NAMED:
        parser.error(f"{args.command} takes no name: {args.name!r}")
    return args


def main() -> None:
    args = parse(sys.argv[1:])
    profile = Profile.load(args.profile)
    match args.command:
        case "up":
            up(profile, max(1, args.purchase_replicas))
        case "down":
            down(profile)
        case "around":
            sys.exit(around(profile, args.rest))
        case "status":
            status(profile)
        case "logs":
            logs(profile, args.name)
        case "install":
            install()
        case "seed":
            seed(profile)
        case "env":
            for key, value in profile.service_env(args.name or "auth").items():
                print(f"{key}={value}")


if __name__ == "__main__":
    main()
