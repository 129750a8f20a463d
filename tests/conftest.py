"""Fixtures for the tests that need the running test stack (`just test` starts it)."""

import ipaddress
import itertools
import random
from pathlib import Path

import httpx
import pytest
import stack

STACK_DIRS = ("integration", "e2e")
_addresses = itertools.count(random.randrange(1, 2**20) * 64)


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


def client_address() -> str:
    """A fresh address in 10.0.0.0/8: the test gateway trusts X-Forwarded-For from loopback,
    so each simulated client gets its own rate-limit buckets, as separate users would."""
    return str(ipaddress.IPv4Address("10.0.0.0") + next(_addresses) % 2**24)


@pytest.fixture
def gateway(profile) -> httpx.Client:
    with httpx.Client(
        base_url=profile.gateway, headers={"X-Forwarded-For": client_address()}, timeout=10
    ) as client:
        yield client
