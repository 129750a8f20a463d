from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from flashbid_shared.inputs import CONTROL, END, Line

_ADDRESS = rf"[^@\s{CONTROL}]"
Email = Annotated[
    str,
    msgspec.Meta(
        pattern=rf"^{_ADDRESS}{{1,64}}@{_ADDRESS}+\.{_ADDRESS}{{2,}}{END}", max_length=254
    ),
]
Username = Annotated[str, msgspec.Meta(pattern=rf"^[A-Za-z0-9_.-]{{3,32}}{END}")]
DisplayName = Annotated[Line, msgspec.Meta(min_length=1, max_length=64)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]  # hashed, never shown
Code = Annotated[str, msgspec.Meta(pattern=r"^\s*[0-9]{6}\s*$")]
Token = Annotated[Line, msgspec.Meta(min_length=1, max_length=4096)]
Weight = Annotated[float, msgspec.Meta(gt=0, le=100)]
Role = Literal["customer", "admin"]


class Input(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class Register(Input):
    email: Email
    username: Username
    password: Password
    display_name: DisplayName | None = None


class VerifyEmail(Input):
    email: Email
    code: Code


class EmailOnly(Input):
    email: Email


class Login(Input):
    login: Annotated[Line, msgspec.Meta(min_length=1, max_length=254)]
    password: Password


class LoginMfa(Input):
    mfa_token: Token
    code: Code


class RefreshRequest(Input):
    refresh_token: Token


class ProfileUpdate(Input):
    display_name: DisplayName


class PasswordChange(Input):
    current_password: Password
    new_password: Password


class PasswordReset(Input):
    token: Token
    new_password: Password


class MfaCode(Input):
    code: Code


class MfaDisable(Input):
    password: Password
    code: Code


class UserUpdate(Input):
    is_active: bool | None = None
    role: Role | None = None
    weight: Weight | None = None


class TokenRequest(Input):
    grant_type: Literal["client_credentials"]
    client_id: str
    client_secret: str


class User(msgspec.Struct, kw_only=True):
    id: UUID
    email: str
    username: str
    display_name: str
    role: str
    email_verified: bool
    mfa_enabled: bool
    weight: float
    created_at: datetime
    is_active: bool = True


class TokenPair(msgspec.Struct, kw_only=True):
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


class MfaChallenge(msgspec.Struct, kw_only=True):
    mfa_token: str
    mfa_required: bool = True


class MfaSetup(msgspec.Struct, kw_only=True):
    secret: str
    otpauth_uri: str


class MfaStatus(msgspec.Struct, kw_only=True):
    enabled: bool


class UserPage(msgspec.Struct, kw_only=True):
    items: list[User]
    total: int
    limit: int
    offset: int
