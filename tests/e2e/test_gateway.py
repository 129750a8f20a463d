"""The gateway as a client meets it: routing, docs, limits, headers, refusals."""

import asyncio
import re

import httpx
import pytest

from tests_support import SERVICES, problem

pytestmark = pytest.mark.stack


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_answers_health_and_docs(gateway, service) -> None:
    assert gateway.get(f"/api/{service}/health/live").json() == {"status": "ok"}
    ready = gateway.get(f"/api/{service}/health/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
    docs = gateway.get(f"/api/{service}/docs")
    assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]
    schema = gateway.get(f"/api/{service}/openapi.json").json()
    assert schema["info"]["title"] == f"Flashbid {service}"
    assert all(path.startswith(f"/api/{service}/") for path in schema["paths"])


@pytest.mark.parametrize(
    "path",
    [
        "/api/purchase/internal/events/1",
        "/api/auth/internal/users",
        "/api/auth/%69nternal/users",
        "/api/catalog//internal/x",
        "/internal/",
        "/api/bidding/x/../internal/y",
    ],
)
def test_internal_routes_are_never_reachable(gateway, path) -> None:
    response = gateway.get(path)
    assert response.status_code == 404
    assert problem(response)["code"] == "not_found"


def test_the_landing_page_links_every_service_with_security_headers(gateway) -> None:
    page = gateway.get("/")
    assert page.status_code == 200
    for service in SERVICES:
        assert f'href="/api/{service}/docs"' in page.text
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_request_ids_are_kept_or_made(gateway) -> None:
    assert (
        gateway.get("/api/catalog/health/live", headers={"X-Request-ID": "trace-7"}).headers[
            "x-request-id"
        ]
        == "trace-7"
    )
    made = gateway.get("/api/catalog/health/live").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)


def test_an_oversized_body_is_refused_with_413(gateway) -> None:
    response = gateway.post("/api/catalog/admin/dashboard", content=b"x" * (2 * 1024 * 1024))
    assert response.status_code == 413
    assert problem(response)["code"] == "payload_too_large"


def test_credential_routes_allow_a_burst_of_five_then_429(gateway) -> None:
    statuses = [
        gateway.post("/api/auth/login", json={"login": "a", "password": "b"}).status_code
        for _ in range(8)
    ]
    assert 429 not in statuses[:6], statuses
    limited = gateway.post("/api/auth/login", json={"login": "a", "password": "b"})
    assert limited.status_code == 429
    assert problem(limited)["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) > 0
    # another address is not affected
    other = gateway.post("/api/auth/login", json={}, headers={"X-Forwarded-For": "192.0.2.77"})
    assert other.status_code != 429


def test_order_routes_allow_a_burst_of_ten_then_429(gateway) -> None:
    statuses = [gateway.post("/api/purchase/orders", json={}).status_code for _ in range(14)]
    assert 429 not in statuses[:11], statuses
    assert statuses[-1] == 429
    # reads of the same path are not counted as order attempts
    assert gateway.get("/api/purchase/orders").status_code != 429


def test_a_flood_of_reads_is_limited(profile, gateway) -> None:
    async def flood() -> list[int]:
        async with httpx.AsyncClient(
            base_url=profile.gateway, headers=dict(gateway.headers), timeout=10
        ) as client:
            responses = await asyncio.gather(
                *(client.get("/api/catalog/health/live") for _ in range(400))
            )
        return [r.status_code for r in responses]

    statuses = asyncio.run(flood())
    assert statuses.count(200) >= 100  # the burst is served
    assert statuses.count(429) > 0
