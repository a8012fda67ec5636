"""Settings precedence: flag > recorded private cluster > environment > default."""

from __future__ import annotations

from pathlib import Path

from alumnos_cli.settings import DEFAULTS, Settings, mask_password


def test_defaults() -> None:
    settings = Settings.resolve(env={})
    assert settings.database_url == DEFAULTS["database_url"]
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.results_dir == Path("results")
    assert settings.state_dir == Path(".alumnos")


def test_environment_overrides_defaults_and_flags_override_environment() -> None:
    env = {"ALUMNOS_DATABASE_URL": "postgresql://env/db", "ALUMNOS_RESULTS_DIR": "/env/results"}
    from_env = Settings.resolve(env=env)
    assert from_env.database_url == "postgresql://env/db"
    assert from_env.results_dir == Path("/env/results")
    flagged = Settings.resolve(env=env, database_url="postgresql://flag/db")
    assert flagged.database_url == "postgresql://flag/db"
    assert flagged.results_dir == Path("/env/results")


def test_recorded_private_cluster_beats_environment_but_not_flags() -> None:
    env = {"ALUMNOS_DATABASE_URL": "postgresql://env/db"}
    recorded = {"database_url": "postgresql://postgres@127.0.0.1:55432/alumnos"}
    assert Settings.resolve(env=env, recorded=recorded).database_url == recorded["database_url"]
    assert Settings.resolve(env=env, recorded=recorded,
                            database_url="postgresql://flag/db").database_url == \
        "postgresql://flag/db"


def test_settings_are_frozen_and_public_masks_passwords() -> None:
    settings = Settings.resolve(env={}, database_url="postgresql://u:secret@h/db")
    assert settings.public()["database_url"] == "postgresql://u:***@h/db"
    assert mask_password("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    try:
        settings.database_url = "x"  # type: ignore[misc]
    except AttributeError:
        return
    raise AssertionError("Settings must be frozen")
