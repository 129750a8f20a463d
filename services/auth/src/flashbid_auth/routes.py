from typing import Annotated, Any

from flashbid_shared.contracts import TokenGrant
from flashbid_shared.errors import Problem
from litestar import Response, get, post
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.params import Body

from flashbid_auth.keys import secret_matches, token_claims
from flashbid_auth.schemas import TokenRequest


@get("/.well-known/jwks.json", operation_id="jwks", tags=["tokens"])
async def jwks(state: State) -> Response[dict[str, Any]]:
    return Response(await state.key_ring.jwks(), headers={"Cache-Control": "public, max-age=300"})


@post("/token", operation_id="service_token", tags=["tokens"], status_code=200)
async def service_token(
    state: State,
    data: Annotated[TokenRequest, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> TokenGrant:
    """OAuth2 client-credentials grant: a service token (`role: service`) for `/internal` calls."""
    settings = state.settings
    expected = settings.client_secrets().get(data.client_id, "")
    if not secret_matches(data.client_secret, expected):
        raise Problem(401, "invalid_client", "Unknown client or wrong secret.")
    key = await state.key_ring.current()
    claims = token_claims(
        subject=data.client_id,
        role="service",
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl=settings.service_token_ttl,
    )
    return TokenGrant(access_token=key.sign(claims), expires_in=settings.service_token_ttl)


ROUTES = [jwks, service_token]
