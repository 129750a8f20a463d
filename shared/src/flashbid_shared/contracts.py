"""The msgspec types that cross service boundaries, used by both the client and the server."""

import msgspec


class TokenGrant(msgspec.Struct, kw_only=True):
    """What `POST /api/auth/token` and `POST /api/auth/login` answer."""

    access_token: str
    expires_in: int
    token_type: str = "Bearer"
    refresh_token: str | None = None


class Jwk(msgspec.Struct, kw_only=True, omit_defaults=True):
    kty: str
    kid: str
    alg: str
    use: str = "sig"
    crv: str | None = None
    x: str | None = None
    n: str | None = None
    e: str | None = None


class Jwks(msgspec.Struct):
    keys: list[Jwk]
