"""Helpers shared by the integration and end-to-end tests."""

import httpx

SERVICES = ("auth", "catalog", "bidding", "purchase", "reviews")


def problem(response: httpx.Response) -> dict:
    """The problem+json body of an error response, checked for the fields every error has."""
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body = response.json()
    assert {"type", "title", "status", "detail", "code"} <= body.keys(), body
    assert body["status"] == response.status_code
    return body
