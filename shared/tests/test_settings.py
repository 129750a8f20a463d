from flashbid_shared.settings import PostgresSettings, env_names, from_env


def test_settings_come_from_upper_case_variables_with_types() -> None:
    settings = from_env(
        PostgresSettings,
        {"DATABASE_URL": "postgresql+asyncpg://x/y", "DATABASE_POOL_SIZE": "25", "OTHER": "1"},
    )
    assert settings.database_url == "postgresql+asyncpg://x/y"
    assert settings.database_pool_size == 25
    assert settings.jwt_audience == "flashbid"
    assert "DATABASE_URL" in env_names(PostgresSettings)
