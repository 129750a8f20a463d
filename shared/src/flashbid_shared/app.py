"""The one way a Flashbid service is assembled, so that all five have the same shape."""

import asyncio
import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import ValidationException
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, Schema, SecurityScheme
from litestar.openapi.spec.enums import OpenAPIType
from litestar.plugins import OpenAPISchemaPlugin
from litestar.routes import HTTPRoute
from litestar.types import Empty

from flashbid_shared import inputs
from flashbid_shared.database import provide_connection
from flashbid_shared.errors import ErrorTable, Problem, exception_handlers
from flashbid_shared.health import Check, health_handlers
from flashbid_shared.http import ServiceTokens, service_client
from flashbid_shared.lanes import Lane, Lanes
from flashbid_shared.observability import RequestIdMiddleware, configure_logging
from flashbid_shared.settings import ServiceSettings
from flashbid_shared.tokens import Deactivated, TokenVerifier, provide_principal, provide_viewer
from flashbid_shared.users import UserDirectory

Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]
JwksSource = Callable[[Litestar], Awaitable[dict[str, Any]]]


def service_app(
    name: str,
    settings: ServiceSettings,
    *,
    routes: Sequence[Any],
    handlers: Sequence[Any] = (),
    lifespan: Sequence[Lifespan] = (),
    ready: Mapping[str, Check] | None = None,
    errors: ErrorTable | None = None,
    lanes: Sequence[Lane] = (),
    jwks: JwksSource | None = None,
    description: str = "",
) -> Litestar:
    """A Litestar app for service `name`: routes under `/api/<name>`, docs, problems, health.

    `app.state` holds `settings`, `http` (a plain client), `verifier` (access tokens),
    `service_tokens` (this service's own client-credentials token for internal calls) and, in
    a service with credentials, `users`: auth's users, kept in step with its changes feed (the
    guards check callers against it; auth puts its own table there).
    `lanes` serve a storm's plain requests of their routes ahead of Litestar (see `lanes`).
    """
    configure_logging(name, settings.log_level)
    errors = {Deactivated: (403, "not_allowed"), **(errors or {})}

    @asynccontextmanager
    async def platform(app: Litestar) -> AsyncIterator[None]:
        async with service_client(timeout=3.0) as http:
            jwks_url = f"{settings.auth_url}/api/auth/.well-known/jwks.json"

            async def fetch_jwks() -> dict[str, Any]:
                if jwks is not None:
                    return await jwks(app)
                response = await http.get(jwks_url)
                response.raise_for_status()
                return msgspec.json.decode(response.content)

            app.state.http = http
            app.state.verifier = TokenVerifier(
                fetch_jwks, issuer=settings.jwt_issuer, audience=settings.jwt_audience
            )
            app.state.service_tokens = ServiceTokens(
                http,
                f"{settings.auth_url}/api/auth/token",
                settings.client_id,
                settings.client_secret,
            )
            steps = [] if jwks else [app.state.verifier.load]  # auth's own keys are at hand
            async with service_client(tokens=app.state.service_tokens, timeout=3.0) as calls:
                tasks = []
                if settings.client_id:
                    steps.append(app.state.service_tokens.token)
                    app.state.users = UserDirectory(calls, settings.auth_url)
                    tasks.append(asyncio.create_task(app.state.users.follow()))
                tasks.append(asyncio.create_task(fetch_ahead(steps)))
                yield
                for task in tasks:
                    task.cancel()

    app = Litestar(
        route_handlers=[
            Router(f"/api/{name}", route_handlers=[*routes, *health_handlers(ready or {})]),
            *handlers,
        ],
        lifespan=[platform, *lifespan, frozen_heap],
        middleware=[RequestIdMiddleware],
        exception_handlers=exception_handlers(errors),
        request_class=StrictRequest,
        type_decoders=[
            (lambda type_: type_ is inputs.Money, lambda _, value: inputs.parse_money(value))
        ],
        plugins=[MoneySchema()],
        before_request=answer_options,
        dependencies={
            "principal": Provide(provide_principal),
            "viewer": Provide(provide_viewer),
            "connection": Provide(provide_connection),
        },
        state=State({"settings": settings, "errors": errors}),
        openapi_config=OpenAPIConfig(
            title=f"Flashbid {name}",
            version="0.1.0",
            description=description,
            path=f"/api/{name}",
            render_plugins=[SwaggerRenderPlugin(path="/docs")],
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
                }
            ),
        ),
        logging_config=None,
    )
    app.state.allowed = {
        route.path_format: ", ".join(sorted(route.methods))
        for route in app.routes
        if isinstance(route, HTTPRoute)
    }
    if lanes:
        app.asgi_handler = Lanes(app, f"/api/{name}", lanes, errors)
    return app


class StrictRequest(Request):
    """A JSON body decodes straight to its route's type, as strictly as the lanes decode it
    (Litestar decodes it untyped, then converts it leniently: a quantity of "1" or 1.0 passed,
    a body nested 2,000 deep or not UTF-8 was a 500)."""

    async def json(self) -> Any:
        if self._json is Empty:
            field = self.route_handler.parsed_data_field
            try:
                self._json = inputs.decode(
                    await self.body(), Any if field is None else field.annotation
                )
            except msgspec.ValidationError as exc:  # a DecodeError too: first
                message, _, where = str(exc).partition(" - at `$")
                error = {"message": message, "key": where.strip("`.") or "data", "source": "body"}
                detail = f"Validation failed for {self.method} {self.url.path}"
                raise ValidationException(detail, extra=[error]) from None
            except msgspec.DecodeError as exc:
                raise Problem(400, "malformed_json", str(exc)) from None
        return self._json


def answer_options(request: Request) -> Response[None] | None:
    """OPTIONS lists every method of the path: Litestar 2's own answer names only those of
    the path's first handler (litestar#4169, fixed in 3)."""
    path = request.scope.get("path_template")
    if request.method != "OPTIONS" or path not in request.app.state.allowed:
        return None
    return Response(None, status_code=204, headers={"Allow": request.app.state.allowed[path]})


class MoneySchema(OpenAPISchemaPlugin):
    """`Money` in the OpenAPI documents: a string of digits."""

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        return value is inputs.Money

    def to_openapi_schema(self, field_definition: Any, schema_creator: Any) -> Schema:
        return Schema(type=OpenAPIType.STRING, pattern=inputs.MONEY_PATTERN, examples=["249.99"])


async def fetch_ahead(steps: Sequence[Callable[[], Awaitable[Any]]], pause: float = 1.0) -> None:
    """Fetch, as a replica starts, what its first requests would otherwise each wait for:
    auth's keys (every token's check) and this service's own token (its calls to others). A
    new replica's first wave of a storm waited behind both. Auth may be starting too: each
    step is tried again every `pause` seconds, for a minute at most."""
    for step in steps:
        for _ in range(int(60 / pause)):
            try:
                await step()
                break
            except Exception:  # auth not up yet: the first request would fetch it anyway
                await asyncio.sleep(pause)


HEAP_THRESHOLDS = (10_000, 10, 100)  # Python's: 700, 10, 10


@asynccontextmanager
async def frozen_heap(app: Litestar) -> AsyncIterator[None]:
    """Once the service is up, what it has built so far (modules, the app, pools: hundreds of
    thousands of objects that live as long as the process) is moved out of the collector's
    sight. Otherwise every full collection walks all of it: in a flash-sale storm that was a
    60-96 ms pause of every request in flight, about once a second. What is built later and
    lives long (2,000 watchers' sockets, caches) is walked by full collections too: those are
    made rarer (70-128 ms each, about once a second, with 2,000 watchers and 500 bids a
    second), and the young ones see more objects at a time."""
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(*HEAP_THRESHOLDS)
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()
