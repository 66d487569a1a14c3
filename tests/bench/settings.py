"""Settings of the ingest benchmark's gunicorn: the production settings plus two reference
views (tests/bench/urls.py)."""

from integrations_site.settings import *  # noqa: F403

ROOT_URLCONF = "tests.bench.urls"
