"""pytest plugin (``-p integrations_site.pytest_defaults``): development defaults for test runs.

Loaded before pytest-django reads the settings, so ``pytest`` works without ``make``: DEBUG-style
settings (generated development keys in ``var/``, private networks allowed for the local test
servers, the sandbox partner mounted). Variables already set in the environment win.
"""

import os

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("SANDBOX_ENABLED", "true")
# Refusal counts are written when a test flushes them (webhooks.services.refusals), never by a
# timer thread in the middle of another test's transaction.
os.environ.setdefault("HUB_WEBHOOK_REFUSAL_FLUSH_SECONDS", "3600")
