"""One error vocabulary for every service, rendered as application/problem+json (RFC 9457).

Domain modules raise `DomainError` subclasses (no framework imports); each service maps them to
an HTTP status and a stable `code` in one table passed to `exception_handlers`.
"""

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from flashbid_shared.inputs import explain
from flashbid_shared.observability import AWAY

log = logging.getLogger("flashbid.errors")

PROBLEM_JSON = "application/problem+json"
T = TypeVar("T")

CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
    503: "unavailable",
}


class DomainError(Exception):
    """A broken business rule. Keyword fields travel to the client (`min_next_bid=...`)."""

    def __init__(self, detail: str = "", **fields: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fields = fields


class Problem(Exception):
    """An error raised where HTTP is already known (guards, clients of other services)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        headers: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.headers = dict(headers or {})
        self.fields = fields


ErrorTable = Mapping[type[Exception], tuple[int, str]]


def problem_parts(
    status: int,
    code: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    **fields: Any,
) -> tuple[bytes, dict[str, str]]:
    """A problem's body and headers (`retry_after` also as `Retry-After`)."""
    headers = dict(headers or {})
    if "retry_after" in fields:
        headers["Retry-After"] = str(fields["retry_after"])
    body = {
        "type": f"https://flashbid.dev/problems/{code}",
        "title": code.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail,
        "code": code,
        **fields,
    }
    return msgspec.json.encode(body), headers


def problem_response(
    status: int,
    code: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    **fields: Any,
) -> Response[bytes]:
    content, headers = problem_parts(status, code, detail, headers, **fields)
    return Response(content, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def nearest(table: Mapping[Any, T], exc: Exception) -> T | None:
    """What `table` (the error table, exception handlers) holds for `exc`'s nearest class."""
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    return None


def exception_handlers(table: ErrorTable | None = None) -> dict[Any, Any]:
    table = dict(table or {})

    def on_problem(_: Request, exc: Problem) -> Response[bytes]:
        return problem_response(exc.status, exc.code, exc.detail, exc.headers, **exc.fields)

    def on_domain(request: Request, exc: DomainError) -> Response[bytes]:
        if found := nearest(table, exc):
            return problem_response(*found, exc.detail, **exc.fields)
        return on_unexpected(request, exc)

    def on_validation(_: Request, exc: ValidationException) -> Response[bytes]:
        errors = exc.extra if isinstance(exc.extra, list) else []
        for error in errors:
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                error["message"] = explain(error["message"])
        return problem_response(422, "invalid_input", exc.detail, errors=errors)

    def on_http(_: Request, exc: HTTPException) -> Response[bytes]:
        if exc.status_code >= 500:
            return problem_response(exc.status_code, "unavailable", "Try again shortly.")
        code = CODES_BY_STATUS.get(exc.status_code, "bad_request")
        headers = dict(exc.headers or {})
        if exc.status_code == 401:
            headers.setdefault("WWW-Authenticate", "Bearer")
        return problem_response(exc.status_code, code, exc.detail, headers)

    def on_unexpected(request: Request, exc: Exception) -> Response[bytes]:
        if isinstance(exc, AWAY):  # Redis, PostgreSQL or a peer away for a moment
            log.warning("%s %s: %r", request.method, request.url.path, exc)
            return problem_response(503, "unavailable", "Try again shortly.", retry_after=1)
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response(500, "internal_error", "Something went wrong on our side.")

    return {
        Problem: on_problem,
        DomainError: on_domain,
        ValidationException: on_validation,
        HTTPException: on_http,
        Exception: on_unexpected,
    }
