"""Settings: both database shapes load, and production refuses to start without its keys."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.cache import cache
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``manage.py`` in a fresh interpreter with exactly the variables given (plus PATH)."""
    base = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {
        "DEBUG": "false",
        "HUB_VAR_DIR": str(tmp_path),
        "SECRET_KEY": "p" * 20 + Fernet.generate_key().decode(),
        "FERNET_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "hub.example.test",
    }
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


@pytest.mark.django_db
def test_the_configured_database_and_cache_are_the_ones_in_use():
    # given the environment CI runs under (embedded default, or PostgreSQL + Redis)
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    # then the database, cache and broker follow it
    expected_vendor = "postgresql" if database_url.startswith("postgres") else "sqlite"
    assert connection.vendor == expected_vendor
    if redis_url:
        assert settings.CACHES["default"]["BACKEND"].endswith("redis.RedisCache")
        assert settings.Q_CLUSTER["redis"] == redis_url
        assert "orm" not in settings.Q_CLUSTER
    else:
        assert settings.CACHES["default"]["BACKEND"].endswith("DatabaseCache")
        assert settings.Q_CLUSTER["orm"] == "default"
    cache.set("settings-test", {"ok": 1}, 30)
    assert cache.get("settings-test") == {"ok": 1}


@pytest.mark.django_db
def test_database_options_fit_the_engine():
    if connection.vendor == "sqlite":
        # concurrent web and worker processes: readers never block the writer, writers queue
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0] == "wal"
            cursor.execute("PRAGMA busy_timeout")
            assert cursor.fetchone()[0] >= 5000
        assert settings.DATABASES["default"]["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    else:
        # long-lived connections, checked before reuse so a restarted server is not an error
        assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version_num")
            assert int(cursor.fetchone()[0]) >= 130000


def test_production_refuses_to_start_without_secret_key(tmp_path):
    result = run_manage("check", env=production_env(tmp_path, SECRET_KEY=None))
    assert result.returncode != 0
    assert "SECRET_KEY is not set and DEBUG is off" in result.stderr
    assert "get_random_secret_key" in result.stderr
    assert not (tmp_path / "secret_key").exists()
    # one line that says what to set, not a traceback
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr


def test_production_refuses_to_start_without_fernet_keys(tmp_path):
    result = run_manage("check", env=production_env(tmp_path, FERNET_KEYS=None))
    assert result.returncode != 0
    assert "FERNET_KEYS is not set and DEBUG is off" in result.stderr
    assert "Fernet.generate_key()" in result.stderr
    assert not (tmp_path / "fernet_key").exists()


def test_malformed_fernet_keys_name_the_entry_without_echoing_it(tmp_path):
    good = Fernet.generate_key().decode()
    bad = "not-a-key-" + good[:20]
    result = run_manage("check", env=production_env(tmp_path, FERNET_KEYS=f"{good},{bad}"))
    assert result.returncode != 0
    assert "FERNET_KEYS entry #2 of 2 is not a valid Fernet key" in result.stderr
    assert bad not in result.stderr and good not in result.stderr


def test_short_secret_key_is_refused_in_production(tmp_path):
    result = run_manage("check", env=production_env(tmp_path, SECRET_KEY="django-insecure-abc"))
    assert result.returncode != 0
    assert "SECRET_KEY is malformed" in result.stderr


def test_debug_generates_keys_once_into_var_with_mode_0600(tmp_path):
    env = {"DEBUG": "true", "HUB_VAR_DIR": str(tmp_path)}
    first = run_manage("check", env=env)
    assert first.returncode == 0, first.stderr
    assert "generated a development key" in first.stderr
    for name in ("secret_key", "fernet_key"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"
    key = (tmp_path / "fernet_key").read_text().strip()
    Fernet(key)  # a real Fernet key
    second = run_manage("check", env=env)
    assert second.returncode == 0
    assert "generated" not in second.stderr
    assert (tmp_path / "fernet_key").read_text().strip() == key


def test_check_deploy_passes_with_production_settings(tmp_path):
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING", env=production_env(tmp_path)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # nothing but the integrations gate's note that it needs --database (an info)
    assert "WARNINGS" not in result.stderr + result.stdout
    assert "ERRORS" not in result.stderr + result.stdout
    assert "(hub.I001)" in result.stdout + result.stderr


def test_the_sandbox_is_not_mounted_unless_enabled():
    from tests.processes import ROOT, hub_process_env

    script = (
        "import django; django.setup()\n"
        "from django.urls import Resolver404, resolve\n"
        "from django.conf import settings\n"
        "assert 'sandbox' not in settings.INSTALLED_APPS\n"
        "try:\n    resolve('/sandbox/crm/v1/me')\nexcept Resolver404:\n    print('not mounted')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=hub_process_env(
            SANDBOX_ENABLED="false", DJANGO_SETTINGS_MODULE="integrations_site.settings"
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "not mounted", result.stderr
