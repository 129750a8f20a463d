"""Fixtures for the tests that need the running test stack (`just test` starts it)."""

import uuid
from pathlib import Path

import httpx
import pytest

import stack
from flashbid_shared.migrations import upgrade
from tests_support import Api, Inbox, client_address

STACK_DIRS = ("integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(part in STACK_DIRS for part in Path(item.fspath).parts):
            item.add_marker("stack")


@pytest.fixture(scope="session")
def profile() -> "stack.Profile":
    profile = stack.Profile.load("test")
    if not stack.http_ok(f"{profile.gateway}/api/auth/health/live"):
        pytest.fail("the test stack is not running: `just test` starts it")
    return profile


@pytest.fixture
def gateway(profile) -> httpx.Client:
    with httpx.Client(
        base_url=profile.gateway, headers={"X-Forwarded-For": client_address()}, timeout=10
    ) as client:
        yield client


@pytest.fixture(scope="session")
def inbox(profile) -> Inbox:
    return Inbox(profile.url("mailpit"))


@pytest.fixture(scope="session")
def api(profile, inbox) -> Api:
    return Api(profile.gateway, inbox)


@pytest.fixture
def scratch_database(profile):
    """`scratch_database("auth")`: the URL of a new database migrated like that service's,
    for tests that must not share rows with the running services; dropped afterwards."""
    names: list[str] = []

    def create(service: str) -> str:
        name = f"scratch_{uuid.uuid4().hex[:12]}"
        stack.psql(profile, f"CREATE DATABASE {name}")
        names.append(name)
        url = profile.database_url(name)
        upgrade(Path(stack.ROOT, f"services/{service}/migrations"), url)
        upgrade(Path(stack.ROOT, f"services/{service}/migrations"), url)  # reruns change nothing
        return url

    yield create
    for name in names:
        stack.psql(profile, f"DROP DATABASE {name} WITH (FORCE)")
