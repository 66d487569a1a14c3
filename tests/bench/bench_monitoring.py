"""Monitoring must not slow the hub.

Ingest: the signed webhook endpoint under load (gunicorn, 16 connections) with monitoring off,
then on (a process, started once, running the monitoring pass every 5 s during the "on"
rounds: twelve times its schedule), in alternating rounds; the median of on / off is the
result (target >= 0.95).

Rule cost: one monitoring pass (rollups, every rule, incidents) timed at 100 and 1,000
connections, each with an endpoint, recent calls and events; recorded against the pass's own
interval (a pass must fit well inside its minute).
"""

from __future__ import annotations

import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.utils import timezone

from connectors.choices import CredentialKind
from connectors.models import ApiCall, Connection
from connectors.services.credentials import create_credential
from tests import signing
from tests.bench import loadgen
from tests.bench.bench_ingest import ROOT, SECONDS, show, start_gunicorn, stop
from tests.processes import free_port
from webhooks.models import WebhookEndpoint, WebhookEvent

ROUNDS = int(os.environ.get("BENCH_MONITORING_ROUNDS", "10"))
SIZES = [int(n) for n in os.environ.get("BENCH_MONITORING_CONNECTIONS", "100,1000").split(",")]
TARGET = 0.95


def monitor_loop(seconds: float, flag) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.bench.monitor_loop", str(seconds), "5", str(flag)],
        cwd=ROOT,
        env={**os.environ},
        start_new_session=True,
    )


def ingest() -> None:
    print(f"== Monitoring and ingest: signed endpoint, {ROUNDS} rounds off / on ==")
    secret = secrets.token_hex(20)
    connection = Connection.objects.create(
        name="mon-in", slug="mon-in", base_url="https://partner.example.test"
    )
    create_credential(connection, CredentialKind.WEBHOOK_SIGNING_SECRET, secret)
    endpoint = WebhookEndpoint.objects.create(connection=connection, slug="mon-gh", scheme="github")
    body = signing.fixture("github", "push")
    headers = {**signing.github_headers(body, secret, "unused"), "Content-Type": "application/json"}
    headers.pop("X-GitHub-Delivery")
    port = free_port()
    server = start_gunicorn(port)
    url = f"http://127.0.0.1:{port}"
    flag = Path(tempfile.mkdtemp(prefix="hub-bench-mon-")) / "on"
    loop = monitor_loop(ROUNDS * (2 * SECONDS + 4) + 60, flag)
    ratios = []
    try:
        loadgen.run(url, f"/webhooks/{endpoint.slug}/", body, headers, seconds=1)  # warm up
        time.sleep(3)  # the loop's Django is up before the first round
        for number in range(1, ROUNDS + 1):
            order = ("off", "on") if number % 2 else ("on", "off")
            results = {}
            for which in order:
                if which == "on":
                    flag.touch()
                try:
                    results[which] = loadgen.run(
                        url, f"/webhooks/{endpoint.slug}/", body, headers, seconds=SECONDS
                    )
                finally:
                    flag.unlink(missing_ok=True)
                time.sleep(1)
            show(f"round {number}: monitoring off", results["off"])
            show(f"round {number}: monitoring on", results["on"])
            ratios.append(results["on"].rps / results["off"].rps)
    finally:
        stop(server)
        stop(loop)
    ratio = statistics.median(ratios)
    print(
        f"  median on / off: {ratio:.2f} (target >= {TARGET:.2f}: "
        f"{'meets' if ratio >= TARGET else 'BELOW'})"
    )
    WebhookEvent.objects.filter(endpoint=endpoint).delete()


def build(count: int, start: int) -> None:
    """Connections ``start`` … ``count - 1``, each with an endpoint, 20 calls (one in ten
    failed) and 5 events in the last minutes."""
    now = timezone.now()
    connections = Connection.objects.bulk_create(
        Connection(name=f"mon {n}", slug=f"mon-{n}", base_url=f"https://p{n}.example.test")
        for n in range(start, count)
    )
    endpoints = WebhookEndpoint.objects.bulk_create(
        WebhookEndpoint(connection=c, slug=f"mon-{c.slug}", unsigned=True) for c in connections
    )
    ApiCall.objects.bulk_create(
        (
            ApiCall(
                connection=c,
                created_at=now - timezone.timedelta(seconds=20 * i),
                method="GET",
                path="/contacts",
                status_code=503 if i % 10 == 0 else 200,
                duration_ms=40 + i,
                error_kind="http_5xx" if i % 10 == 0 else "",
            )
            for c in connections
            for i in range(20)
        ),
        batch_size=2000,
    )
    WebhookEvent.objects.bulk_create(
        (
            WebhookEvent(
                endpoint=e,
                event_id=f"{e.slug}-{i}",
                body=b"{}",
                received_at=now - timezone.timedelta(seconds=30 * i),
                status="processed",
            )
            for e in endpoints
            for i in range(5)
        ),
        batch_size=2000,
    )


def rule_cost() -> None:
    from monitoring.services.incidents import run_pass

    print("== Monitoring pass cost by number of connections ==")
    built = 0
    for size in SIZES:
        build(size, built)
        built = size
        run_pass()  # the first pass creates the running totals
        samples = []
        for _ in range(3):
            started = time.perf_counter()
            run_pass()
            samples.append(time.perf_counter() - started)
        median = statistics.median(samples)
        print(
            f"  {size:>6} connections: one pass {median * 1000:8.0f} ms "
            f"({median * 1000 / size:.1f} ms per connection; {median / 60:.1%} of its minute)"
        )


def run() -> None:
    ingest()
    rule_cost()
