"""Log lines carry their correlation id and structured fields, as text or as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.processes import ROOT

SCRIPT = """
import logging
from connectors.correlation import correlation_scope
log = logging.getLogger("connectors.engine")
with correlation_scope("corr-123"):
    log.warning("api call %s", "GET /x", extra={"connection": "crm", "attempt": 2})
log.warning("outside any work", extra={"correlation_id": "given-456", "endpoint": "shop"})
log.warning("nothing at all")
"""


def run(log_format: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SCRIPT],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "true", "LOG_FORMAT": log_format},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [line for line in done.stderr.splitlines() if "connectors.engine" in line]


def test_the_text_format_shows_the_correlation_id_and_fields():
    first, second, third = run("text")
    assert "[corr-123] api call GET /x connection=crm attempt=2" in first
    assert "[given-456] outside any work endpoint=shop" in second
    assert third.endswith("[-] nothing at all")


def test_the_json_format_is_one_object_per_line_with_every_field():
    lines = [json.loads(line) for line in run("json")]
    assert [line["message"] for line in lines] == [
        "api call GET /x",
        "outside any work",
        "nothing at all",
    ]
    first, second, third = lines
    assert (first["correlation_id"], first["connection"], first["attempt"]) == (
        "corr-123",
        "crm",
        2,
    )
    assert (second["correlation_id"], second["endpoint"]) == ("given-456", "shop")
    assert third["correlation_id"] == "-"
    assert {"time", "level", "logger"} <= set(first)
    assert first["level"] == "WARNING" and first["logger"] == "connectors.engine"


def test_an_unknown_log_format_is_refused_with_what_to_set():
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "true", "LOG_FORMAT": "xml"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert 'LOG_FORMAT must be "text" or "json"' in done.stderr
