"""`/health/live` (the process answers) and `/health/ready` (its own stores answer)."""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from litestar import Response, get
from litestar.datastructures import State

from flashbid_shared.errors import problem_response

Check = Callable[[State], Awaitable[Any]]


def health_handlers(checks: Mapping[str, Check], timeout: float = 2.0) -> list[Any]:
    async def probe(check: Check, state: State) -> str:
        try:
            await asyncio.wait_for(check(state), timeout)
        except Exception:
            return "unavailable"
        return "ok"

    @get("/health/live", operation_id="health_live", tags=["health"])
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @get("/health/ready", operation_id="health_ready", tags=["health"])
    async def ready(state: State) -> Response[Any]:
        results = await asyncio.gather(*(probe(check, state) for check in checks.values()))
        report = dict(zip(checks, results, strict=True))
        if all(result == "ok" for result in results):
            return Response({"status": "ok", "checks": report})
        return problem_response(503, "not_ready", "A store is not answering.", checks=report)

    return [live, ready]
