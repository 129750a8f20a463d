"""The msgspec types that cross service boundaries, used by both the client and the server."""

from typing import Annotated
from uuid import UUID

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


class UserLookup(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`POST /internal/users/lookup` on auth."""

    ids: Annotated[list[UUID], msgspec.Meta(max_length=500)]


class UserSummary(msgspec.Struct, kw_only=True):
    id: UUID
    display_name: str
    weight: float
    email_verified: bool
    is_active: bool


class UserSummaries(msgspec.Struct, kw_only=True):
    users: list[UserSummary]


class Notification(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`POST /internal/notifications` on auth: an email to a user from a template
    (`outbid`, `won`, `event_starting`, `event_ended`); `data` fills the template."""

    user_id: UUID
    template: str
    data: dict[str, str] = msgspec.field(default_factory=dict)
