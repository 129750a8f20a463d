"""Access-token verification against auth's JWKS, the request principal and the guards.

A token says who its user was when it was signed; the guards also ask the service's directory
of users (`app.state.users`) who they are now, so that a demotion or a deactivation binds the
tokens already issued: admin routes, and every write, act on the user as auth has them (at
once in auth, within the directory's bound elsewhere). Admin power needs both the token's word
and auth's, so a promotion takes effect with the next token. Reads by signed-in users are
answered from the token alone (a deactivated user still reads their orders); an app without a
directory (a unit test's) checks the token alone."""

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from uuid import UUID

import jwt
import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256
from litestar.connection import ASGIConnection, Request
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

from flashbid_shared.contracts import UserSummary
from flashbid_shared.errors import DomainError, Problem

# The algorithm is pinned by the key (its JWK type), never taken from the token alone.
ALGORITHM_BY_KTY = {"OKP": "EdDSA", "RSA": "RS256"}
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti"]
VERIFIED_CACHE_SIZE = 100_000
ROLES_USER = frozenset({"customer", "admin"})
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

KeyFetcher = Callable[[], Awaitable[dict[str, Any]]]


class InvalidToken(Exception):
    pass


class Deactivated(DomainError):
    """The caller's account is deactivated (each service's error table names its code)."""


class Directory(Protocol):
    """Who the users are now: auth's own table in auth, `UserDirectory` elsewhere."""

    async def get(self, user_id: UUID, *, strict: bool = False) -> UserSummary | None: ...


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


class Principal(msgspec.Struct, frozen=True, gc=False):
    """Who is calling: a user (id and role) or another service (its name, role `service`)."""

    subject: str
    role: str
    email_verified: bool = False
    session_id: str | None = None

    @property
    def user_id(self) -> UUID:
        return UUID(self.subject)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class TokenVerifier:
    """Verifies access tokens locally; keys come from auth's JWKS and stay cached.

    An unknown `kid` triggers at most one refetch per `refetch_interval`, so a forged kid cannot
    make us hammer auth, and an auth restart or outage never evicts keys we already trust.
    """

    def __init__(
        self,
        fetch_jwks: KeyFetcher,
        *,
        issuer: str,
        audience: str,
        refetch_interval: float = 10.0,
        leeway: float = 5.0,
    ) -> None:
        self._fetch = fetch_jwks
        self._issuer = issuer
        self._audience = audience
        self._refetch_interval = refetch_interval
        self._leeway = leeway
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self._verified: dict[str, tuple[Principal, float]] = {}

    async def verify(self, token: str) -> Principal:
        """The token's principal, or InvalidToken. Verified by hand rather than through
        `jwt.decode` (a third of the hot path's CPU was there): the signature first, with the
        key's own algorithm, then every claim. A verified token is remembered until it expires."""
        remembered = self._verified.get(token)
        if remembered is not None and remembered[1] > time.time():
            return remembered[0]
        try:
            header_part, claims_part, signature_part = token.split(".")
            header = msgspec.json.decode(_b64(header_part))
        except (ValueError, msgspec.DecodeError) as exc:
            raise InvalidToken("malformed token") from exc
        kid = header.get("kid") if isinstance(header, dict) else None
        alg = header.get("alg") if isinstance(header, dict) else None
        if not isinstance(kid, str) or alg not in ALGORITHM_BY_KTY.values():
            raise InvalidToken("unsupported token header")
        key = await self._key(kid)
        if key is None:
            raise InvalidToken("unknown signing key")
        if alg != ALGORITHM_BY_KTY[key.key_type]:
            raise InvalidToken("algorithm does not match the key")
        try:
            signed = f"{header_part}.{claims_part}".encode()
            if alg == "RS256":
                key.key.verify(_b64(signature_part), signed, PKCS1v15(), SHA256())
            else:
                key.key.verify(_b64(signature_part), signed)
            claims = msgspec.json.decode(_b64(claims_part))
        except (InvalidSignature, ValueError, msgspec.DecodeError) as exc:
            raise InvalidToken("bad signature") from exc
        principal, expires = self._check_claims(claims)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (principal, expires)
        return principal

    def _check_claims(self, claims: Any) -> tuple[Principal, float]:
        if not isinstance(claims, dict) or any(c not in claims for c in REQUIRED_CLAIMS):
            raise InvalidToken("a required claim is missing")
        now = time.time()
        exp, iat, nbf = claims["exp"], claims["iat"], claims.get("nbf", 0)
        if not all(isinstance(t, int | float) and not isinstance(t, bool) for t in (exp, iat, nbf)):
            raise InvalidToken("malformed time claims")
        if exp <= now - self._leeway:
            raise InvalidToken("expired")
        if nbf > now + self._leeway or iat > now + self._leeway:
            raise InvalidToken("not valid yet")
        audience = claims["aud"]
        if claims["iss"] != self._issuer or (
            audience != self._audience
            and not (isinstance(audience, list) and self._audience in audience)
        ):
            raise InvalidToken("wrong issuer or audience")
        role, subject = claims.get("role"), claims["sub"]
        if not isinstance(role, str) or not isinstance(subject, str):
            raise InvalidToken("token without a role")
        principal = Principal(
            subject=subject,
            role=role,
            email_verified=claims.get("email_verified") is True,
            session_id=claims.get("sid"),
        )
        return principal, exp + self._leeway

    async def load(self) -> None:
        """Fetch auth's keys now (a replica starting) rather than on the first token, which
        every request behind it would wait for. Raises if auth does not answer."""
        async with self._lock:
            self._trust(await self._fetch())
            self._fetched_at = time.monotonic()

    async def _key(self, kid: str) -> jwt.PyJWK | None:
        if kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            if (
                kid not in self._keys
                and time.monotonic() - self._fetched_at > self._refetch_interval
            ):
                self._fetched_at = time.monotonic()
                try:
                    self._trust(await self._fetch())
                except Exception:  # auth away: keep trusting what we have
                    return None
        return self._keys.get(kid)

    def _trust(self, jwks: dict[str, Any]) -> None:
        self._keys |= {
            jwk["kid"]: jwt.PyJWK(jwk)
            for jwk in jwks.get("keys", [])
            if jwk.get("kty") in ALGORITHM_BY_KTY and "kid" in jwk
        }


def bearer(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header's value."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token else None


def bearer_token(connection: ASGIConnection) -> str | None:
    if token := bearer(connection.headers.get("authorization", "")):
        return token
    if connection.scope["type"] == "websocket":  # browsers cannot set headers on a WebSocket
        return connection.query_params.get("token")
    return None


async def authenticate(connection: ASGIConnection) -> Principal:
    """The verified principal of this connection, cached on its scope; 401 if there is none."""
    state = connection.scope.setdefault("state", {})
    if "principal" in state:
        return state["principal"]
    token = bearer_token(connection)
    if token is None:
        raise NotAuthorizedException("A bearer token is required.")
    try:
        principal = await connection.app.state.verifier.verify(token)
    except InvalidToken as exc:
        raise NotAuthorizedException("The token is invalid or expired.") from exc
    state["principal"] = principal
    return principal


async def user_required(connection: ASGIConnection, _: Any) -> None:
    principal = await authenticate(connection)
    if principal.role not in ROLES_USER:
        raise PermissionDeniedException("This route is for signed-in users.")
    if connection.scope["type"] == "http" and connection.scope["method"] in WRITES:
        await current(connection, principal)


async def admin_required(connection: ASGIConnection, _: Any) -> None:
    principal = await authenticate(connection)
    if principal.role != "admin" or (await current(connection, principal)).role != "admin":
        raise PermissionDeniedException("This route is for administrators.")


async def current(connection: ASGIConnection, principal: Principal) -> Principal:
    """The caller as auth has them now, which the handler then gets as its principal; 403 if
    deactivated. If auth cannot say, a customer's write goes on (as their orders and bids
    do) but admin power is refused: 503, better than acting for an admin auth may have
    demoted."""
    users: Directory | None = getattr(connection.app.state, "users", None)
    if users is None:
        return principal
    user = await users.get(principal.user_id, strict=True)
    if user is None:
        if principal.is_admin:
            raise Problem(503, "unavailable", "Try again shortly.", retry_after=1)
        return principal
    if not user.is_active:
        raise Deactivated("This account is deactivated.", reason="deactivated")
    now = Principal(
        subject=principal.subject,
        role="admin" if principal.is_admin and user.role == "admin" else "customer",
        email_verified=principal.email_verified or user.email_verified,
        session_id=principal.session_id,
    )
    connection.scope["state"]["principal"] = now
    return now


async def service_required(connection: ASGIConnection, _: Any) -> None:
    if (await authenticate(connection)).role != "service":
        raise PermissionDeniedException("This route is for Flashbid services.")


async def provide_principal(request: Request) -> Principal:
    """Dependency for handlers behind one of the guards above."""
    return await authenticate(request)


async def provide_viewer(request: Request) -> Principal | None:
    """Dependency for public routes that say a little more to a signed-in caller; a missing
    or bad token just means an anonymous viewer."""
    if bearer_token(request) is None:
        return None
    try:
        return await authenticate(request)
    except NotAuthorizedException:
        return None
