#!/usr/bin/env python3
"""Flashbid's local platform without Docker: install what is missing, start, stop, inspect.

    python3 tests/stack.py up|down|status|logs [name] [--profile dev|test]

Every server runs on 127.0.0.1 from `.state/<profile>/` (git-ignored) and is stopped by the PID
it was started with, so nothing here touches system services. The `test` profile uses other
ports and another folder, so the test suite can run while a development stack is up. Only the
standard library is used: this file runs before the Python workspace exists.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
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
        "postgres": 55432,
        "redis": 56379,
        "ferretdb": 57017,
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
        "postgres": 55442,
        "redis": 56389,
        "ferretdb": 57027,
    },
}


@dataclass
class Profile:
    """Where one stack lives. Ports come from FLASHBID_<NAME>_PORT (dev) or
    FLASHBID_TEST_<NAME>_PORT (test); the gateway trusts X-Forwarded-For only from
    FLASHBID_TRUSTED_PROXY (default: nobody in dev, loopback in test, where each simulated
    client presents its own address)."""

    name: str
    ports: dict[str, int] = field(default_factory=dict)
    trusted_proxy: str = "unix:"
    admin_password: str = ""  # empty: the first admin's password is made and printed once

    @classmethod
    def load(cls, name: str) -> "Profile":
        prefix = "FLASHBID_" if name == "dev" else f"FLASHBID_{name.upper()}_"
        ports = {
            key: int(os.environ.get(f"{prefix}{key.upper()}_PORT", default))
            for key, default in DEFAULT_PORTS[name].items()
        }
        trusted = "unix:" if name == "dev" else "127.0.0.1"
        admin_password = "" if name == "dev" else "test-root-passphrase-1"
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
        if service == "auth":
            env["SMTP_HOST"] = "127.0.0.1"
            env["SMTP_PORT"] = str(self.ports["smtp"])
            env["PUBLIC_URL"] = self.gateway
            if self.admin_password:
                env["ADMIN_PASSWORD"] = self.admin_password
        return env


# ---------------------------------------------------------------------------------- helpers


def say(message: str) -> None:
    print(f"flashbid: {message}", flush=True)


def fail(message: str) -> NoReturn:
    print(f"flashbid: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def run(*cmd: str | Path, user: str | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], check=True, user=user, **kwargs)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


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


def stop_pid(pid_file: Path, timeout: float = 10.0) -> None:
    pid = pid_alive(pid_file)
    if pid:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(pid_file):
            time.sleep(0.05)
        if pid_alive(pid_file):
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


def install() -> None:
    missing = [pkg for binary, pkg in DEBIAN_PACKAGES.items() if not has_binary(binary)]
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


def psql(profile: Profile, sql: str) -> str:
    return run(
        postgres_bin() / "psql",
        "-h",
        "127.0.0.1",
        "-p",
        str(profile.ports["postgres"]),
        "-U",
        "flashbid",
        "-d",
        "postgres",
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


def manage(profile: Profile, service: str, command: str, quiet: bool = True) -> None:
    """`python -m flashbid_<service> <command>` with the service's environment."""
    run(
        VENV_BIN / "python",
        "-m",
        f"flashbid_{service}",
        command,
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


def start_services(profile: Profile) -> None:
    for service in SERVICES:
        spawn(
            profile,
            service,
            [
                str(VENV_BIN / "granian"),
                "--interface",
                "asgi",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(profile.ports[service]),
                "--workers",
                "1",
                "--log-level",
                "warning",
                f"flashbid_{service}.app:create_app",
            ],
            env=profile.service_env(service),
        )


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
        **{f"{s.upper()}_UPSTREAM": f"127.0.0.1:{profile.ports[s]}" for s in SERVICES},
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


def start_nginx(profile: Profile) -> None:
    config = render_nginx(profile)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    run(nginx, "-t", "-q", "-p", profile.dir / "nginx", "-c", config)
    if pid_alive(profile.dir / "run" / "nginx.pid"):
        run(nginx, "-p", profile.dir / "nginx", "-c", config, "-s", "reload")
    else:
        run(nginx, "-p", profile.dir / "nginx", "-c", config)


# -------------------------------------------------------------------------------- commands


def up(profile: Profile) -> None:
    started = time.monotonic()
    install()
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
    start_services(profile)
    start_nginx(profile)
    for service in SERVICES:
        wait_until(
            f"{service} (through the gateway)",
            lambda s=service: http_ok(f"{profile.gateway}/api/{s}/health/ready"),
            60,
            logs / f"{service}.log",
        )
    if profile.name == "dev":
        seed(profile)  # each part skips what is already there
    say(f"up in {time.monotonic() - started:.1f}s")
    print(f"\n  gateway      {profile.gateway}/")
    for service in SERVICES:
        print(f"  {service:<12} {profile.gateway}/api/{service}/docs")
    print(f"  inbox        {profile.url('mailpit')}/\n")


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
                f"choose another with FLASHBID_{'' if profile.name == 'dev' else 'TEST_'}"
                f"{name.upper()}_PORT"
            )


def down(profile: Profile) -> None:
    run_dir = profile.dir / "run"
    nginx_pid = run_dir / "nginx.pid"
    for name in (*SERVICES, "ferretdb", "mailpit", "redis"):
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
        **{s: run_dir / f"{s}.pid" for s in SERVICES},
    }
    for name, pid_file in pid_files.items():
        pid = pid_alive(pid_file)
        port = profile.ports[name]
        health = ""
        if name in SERVICES:
            health = (
                "ready" if http_ok(f"{profile.url(name)}/api/{name}/health/ready") else "not ready"
            )
        state = f"running (pid {pid})" if pid else "stopped"
        print(f"{name:<10} {port:>6}  {state:<22} {health}")


def logs(profile: Profile, name: str | None) -> None:
    folder = profile.dir / "logs"
    files = [folder / f"{name}.log"] if name else sorted(folder.glob("*.log"))
    os.execvp("tail", ["tail", "-n", "50", "-F", *map(str, files)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "command", choices=["up", "down", "status", "logs", "install", "env", "seed"]
    )
    parser.add_argument("name", nargs="?")
    parser.add_argument("--profile", default="dev", choices=sorted(DEFAULT_PORTS))
    args = parser.parse_args()
    profile = Profile.load(args.profile)
    match args.command:
        case "up":
            up(profile)
        case "down":
            down(profile)
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
