"""compose.yaml against the local stack (tests/stack.py): the same services, ports, health checks
and environment. No Docker engine is needed; `docker stack config` is run if the CLI is there."""

import re
import shutil
import subprocess
from importlib import import_module
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

import stack
from flashbid_shared.settings import env_names

COMPOSE = yaml.safe_load((stack.ROOT / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
DOCKERFILE = (stack.ROOT / "services" / "Dockerfile").read_text()
# The dev profile with its default ports, whatever FLASHBID_*_PORT says on this machine.
DEV = stack.Profile("dev", dict(stack.DEFAULT_PORTS["dev"]))
OFFICIAL_IMAGES = {
    "gateway": "nginx:",
    "postgres": "postgres:",
    "redis": "redis:",
    "mongo": "mongo:",
    "mailpit": f"axllent/mailpit:{stack.MAILPIT_VERSION}",
}
# Where a local 127.0.0.1:<port> is in compose: app services keep their ports, stores have theirs.
ADDRESS_OF_PORT = {
    DEV.ports[name]: address
    for name, address in {
        **{service: f"{service}:{DEV.ports[service]}" for service in stack.SERVICES},
        "postgres": "postgres:5432",
        "redis": "redis:6379",
        "ferretdb": "mongo:27017",
        "gateway": f"127.0.0.1:{DEV.ports['gateway']}",  # PUBLIC_URL: the published gateway
    }.items()
}


def interpolated(value: object) -> str:
    """A compose value with each `${NAME:-default}` at its default, as with no `.env`."""
    return re.sub(r"\$\{\w+(?::?-([^}]*))?\}", lambda m: m[1] or "", str(value))


def environment(service: str) -> dict[str, str]:
    return {name: interpolated(value) for name, value in SERVICES[service]["environment"].items()}


def in_compose(name: str, local_value: str) -> str:
    """What a variable of the local stack should be in compose."""
    if name == "SMTP_HOST":
        return "mailpit"
    return re.sub(r"127\.0\.0\.1:(\d+)", lambda m: ADDRESS_OF_PORT[int(m[1])], local_value)


def published(service: str) -> set[tuple[int, int]]:
    return {(int(port["published"]), int(port["target"])) for port in SERVICES[service]["ports"]}


def test_the_local_topology_with_official_images():
    assert set(SERVICES) == {*stack.SERVICES, *OFFICIAL_IMAGES}
    for name, image in OFFICIAL_IMAGES.items():
        assert SERVICES[name]["image"].startswith(image), name
    images = {(SERVICES[s]["image"], str(SERVICES[s]["build"])) for s in stack.SERVICES}
    assert len(images) == 1, "one image for the five services"
    assert SERVICES["auth"]["build"] == {"context": ".", "dockerfile": "services/Dockerfile"}


@pytest.mark.parametrize("service", stack.SERVICES)
def test_app_service_port_health_check_and_replicas(service):
    port = DEV.ports[service]
    spec = SERVICES[service]
    assert spec["command"] == ["flashbid-serve", service, str(port)]
    assert spec["expose"] == [str(port)]
    assert "ports" not in spec, "replicas would compete for one published port"
    assert spec["healthcheck"]["test"][-1] == f"http://127.0.0.1:{port}/api/{service}/health/ready"
    assert spec["deploy"]["replicas"] >= 1


def test_several_replicas_somewhere():
    assert max(SERVICES[s]["deploy"]["replicas"] for s in stack.SERVICES) > 1


def test_every_service_has_a_health_check():
    for name, spec in SERVICES.items():
        assert spec["healthcheck"]["test"][0] == "CMD", name


def test_published_ports_are_the_dev_ports():
    gateway = int(SERVICES["gateway"]["environment"]["GATEWAY_PORT"])
    assert published("gateway") == {(DEV.ports["gateway"], gateway)}
    smtp = int(environment("auth")["SMTP_PORT"])  # Mailpit's own ports: web 8025, SMTP 1025
    assert published("mailpit") == {(DEV.ports["mailpit"], 8025), (DEV.ports["smtp"], smtp)}
    assert not any("ports" in SERVICES[s] for s in ("postgres", "redis", "mongo"))


@pytest.mark.parametrize("service", stack.SERVICES)
def test_environment_is_the_local_one(service):
    settings = import_module(f"flashbid_{service}.settings").Settings
    reads = env_names(settings)
    compose = environment(service)
    assert set(compose) <= reads, "a variable the service does not read"
    local = {name: value for name, value in DEV.service_env(service).items() if name in reads}
    assert set(local) <= set(compose), "a variable the local stack sets is missing"
    for name, value in local.items():
        expected = in_compose(name, value)
        actual = compose[name]
        if name == "DATABASE_URL":  # compose adds the password the local cluster does without
            url = urlsplit(actual)
            assert url.password == environment("postgres")["POSTGRES_PASSWORD"]
            assert url.username == environment("postgres")["POSTGRES_USER"]
            actual = actual.replace(f":{url.password}@", "@")
        assert actual == expected, name


def test_client_secrets_are_the_same_variable_on_both_sides():
    auth = SERVICES["auth"]["environment"]
    for service in stack.SERVICES[1:]:
        assert (
            auth[f"{service.upper()}_CLIENT_SECRET"]
            == SERVICES[service]["environment"]["CLIENT_SECRET"]
        )


def test_postgres_has_a_database_per_service():
    postgres = SERVICES["postgres"]
    databases = set(postgres["environment"]["FLASHBID_DATABASES"].split())
    assert databases == {f"flashbid_{s}" for s in stack.POSTGRES_SERVICES}
    assert "$$FLASHBID_DATABASES" in postgres["entrypoint"][-1]


def test_gateway_gets_every_template_variable():
    gateway = SERVICES["gateway"]
    template = stack.ROOT / "nginx" / "flashbid.conf.template"
    env = environment("gateway")
    directives = re.sub(r"(?m)^\s*#.*$", "", template.read_text())
    assert set(env) == set(re.findall(r"\$\{(\w+)\}", directives))
    for service in stack.SERVICES:
        assert env[f"{service.upper()}_SERVERS"] == f"server {service}:{DEV.ports[service]};"
    assert env["TRUSTED_PROXY"] == DEV.trusted_proxy
    mounts = dict(volume.split(":")[:2] for volume in gateway["volumes"])
    assert mounts["./nginx/flashbid.conf.template"].startswith("/etc/nginx/templates/")
    assert mounts["./nginx/flashbid.conf.template"].endswith(".conf.template")
    assert mounts["./gateway"] == env["GATEWAY_ROOT"]
    assert all((stack.ROOT / source).exists() for source in mounts)
    assert set(gateway["depends_on"]) == set(stack.SERVICES)


def test_dockerfile_multi_stage_uv_non_root():
    assert len(re.findall(r"^FROM ", DOCKERFILE, re.M)) >= 2
    assert "COPY --from=ghcr.io/astral-sh/uv:" in DOCKERFILE
    assert "uv sync --frozen --no-dev" in DOCKERFILE
    users = re.findall(r"^USER (\S+)", DOCKERFILE, re.M)
    assert users and users[-1] not in ("root", "0")
    for step in (
        'python -m "flashbid_$service" migrate',
        "python -m flashbid_auth create-admin",
        "exec granian --interface asgi --factory",
    ):
        assert step in DOCKERFILE, step


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI")
def test_docker_stack_accepts_the_file(tmp_path: Path):
    """`docker stack deploy` reads a stricter schema than compose (no `depends_on` conditions,
    no inline configs, no pull_policy); `docker stack config` checks it without an engine."""
    result = subprocess.run(
        ["docker", "stack", "config", "-c", str(stack.ROOT / "compose.yaml")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
