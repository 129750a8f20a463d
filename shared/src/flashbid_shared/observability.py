"""Request ids (in, out and onward) and JSON logs."""

import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar, Token

import asyncpg
import httpx
import redis.exceptions
import sqlalchemy.exc
from litestar.types import ASGIApp, Receive, Scope, Send

request_id: ContextVar[str] = ContextVar("request_id", default="")
# A store or a peer away for a moment (restarting, unreachable): the work is tried again.
AWAY = (
    OSError,
    httpx.HTTPError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InterfaceError,
)
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Takes `X-Request-ID` from the caller (nginx sets one, and echoes it to the client) or
    makes one, for the logs and the calls to other services."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        token = bind_request_id(scope)
        try:
            await self.app(scope, receive, send)
        finally:
            request_id.reset(token)


def bind_request_id(scope: Scope) -> Token[str]:
    """This request's id, the caller's if it gave a sane one, in `request_id` until reset."""
    incoming = b""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            incoming = value
            break
    rid = incoming.decode("latin-1")
    return request_id.set(rid if _SAFE_ID.match(rid) else uuid.uuid4().hex)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if rid := request_id.get():
            entry["request_id"] = rid
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def round_failed(log: logging.Logger, what: str, exc: Exception) -> None:
    """A round of background work failed: one line when a store or a peer is away (the round
    runs again soon; a traceback every half second hid everything else in the log while a
    database was down), the traceback for anything else."""
    if isinstance(exc, AWAY):
        log.warning("%s failed: %r", what, exc)
    else:
        log.error("%s failed", what, exc_info=exc)
