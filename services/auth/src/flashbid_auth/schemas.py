from typing import Literal

import msgspec


class TokenRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    grant_type: Literal["client_credentials"]
    client_id: str
    client_secret: str
