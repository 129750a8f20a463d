"""Settings are msgspec Structs read from the environment: `database_url` <- `DATABASE_URL`."""

import os
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

T = TypeVar("T", bound=msgspec.Struct)


class ServiceSettings(msgspec.Struct, kw_only=True):
    """What every service reads; each service's own Settings adds its stores and peers."""

    auth_url: str = "http://127.0.0.1:8001"
    jwt_issuer: str = "flashbid-auth"
    jwt_audience: str = "flashbid"
    client_id: str = ""
    client_secret: str = ""
    log_level: str = "INFO"


def env_names(cls: type[msgspec.Struct]) -> set[str]:
    """The environment variables a settings class reads."""
    return {field.name.upper() for field in msgspec.structs.fields(cls)}


def from_env(cls: type[T], env: Mapping[str, str] | None = None, **overrides: Any) -> T:
    env = os.environ if env is None else env
    values: dict[str, Any] = {
        field.name: env[field.name.upper()]
        for field in msgspec.structs.fields(cls)
        if field.name.upper() in env
    }
    values.update(overrides)
    return msgspec.convert(values, cls, strict=False)


class PostgresSettings(ServiceSettings, kw_only=True):
    database_url: str
    database_pool_size: int = 10
