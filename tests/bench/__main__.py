"""``make bench``: every benchmark the issues describe, each as a ratio against a ceiling measured
in the same run. Results are recorded by hand in docs/benchmarks.md.

Runs with production-like settings (DEBUG off: no query log) on a throw-away SQLite database,
or, when ``DATABASE_URL`` points at PostgreSQL, on a ``<name>_bench`` database recreated for
the run (the configured database itself is not touched).
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path


def _fresh_postgres_database(url: str) -> str:
    """Recreate ``<name>_bench`` next to the configured database and return its URL."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    parts = urlsplit(url)
    name = (parts.path.lstrip("/") or "hub") + "_bench"
    admin = urlunsplit(parts._replace(path="/postgres", scheme="postgresql"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def configure_environment() -> Path:
    from cryptography.fernet import Fernet

    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(64))
    os.environ.setdefault("FERNET_KEYS", Fernet.generate_key().decode())
    os.environ["HUB_ALLOW_PRIVATE_NETWORKS"] = "true"
    os.environ["SANDBOX_ENABLED"] = "true"  # the flows benchmark talks to the sandbox CRM
    os.environ["ALLOWED_HOSTS"] = "127.0.0.1,localhost"
    os.environ["SECURE_SSL_REDIRECT"] = "false"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["HUB_VAR_DIR"] = str(workdir)
    # the database is new at each run, its ids start again at 1: a cache of its own on Redis,
    # so that no state an earlier run left under the same ids (a slow flag, slots) applies
    os.environ["CACHE_KEY_PREFIX"] = f"bench-{workdir.name}"
    (workdir / "static").mkdir()
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        os.environ["DATABASE_URL"] = _fresh_postgres_database(url)
    else:
        os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "integrations_site.settings")
    return workdir


def main() -> int:
    configure_environment()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)

    from tests.bench import (
        bench_e2e,
        bench_engine,
        bench_flows,
        bench_ingest,
        bench_monitoring,
        bench_nodes,
        bench_processing,
        bench_purge,
        bench_scale,
        bench_slow_clients,
        bench_syncs,
        bench_workflows,
    )

    benchmarks = {  # in the order they run
        "engine": bench_engine.run,
        "ingest": bench_ingest.run,
        "slow": bench_slow_clients.run,
        "flows": bench_flows.run,
        "processing": bench_processing.run,
        "syncs": bench_syncs.run,
        "purge": bench_purge.run,
        "scale": bench_scale.run,
        "bulkhead": bench_e2e.run_bulkhead,
        "e2e": bench_e2e.run_e2e,
        "nodes": bench_nodes.run,
        "monitoring": bench_monitoring.run,
        "workflows": bench_workflows.run,
    }
    which = sys.argv[1:] or list(benchmarks)
    unknown = [name for name in which if name not in benchmarks]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(benchmarks)}")
        return 2
    for name, run in benchmarks.items():
        if name in which:
            run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
