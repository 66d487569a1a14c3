"""Purge under load: a retention purge of a million expired events runs while signed
deliveries arrive, and the signed endpoint's p99 during the purge stays within 2 times its
p99 without it (the scale issue).

The expired rows are built with SQL (as in the scale benchmark); gunicorn serves the signed
endpoint (as in the ingest benchmark); the purge runs pass after pass in a thread of this
process, back to back (the worst case: a schedule every 5 minutes leaves the database idle in
between), while the load generator measures. Rounds alternate "quiet" and "during the purge"
loads; the medians are compared.
"""

from __future__ import annotations

import os
import secrets
import statistics
import threading
import time

from django.db import connection as db

from connectors.choices import CredentialKind
from connectors.models import Connection
from connectors.services.credentials import create_credential
from tests import signing
from tests.bench import bench_scale, loadgen
from tests.bench.bench_ingest import show, start_gunicorn, stop
from tests.processes import free_port
from webhooks.models import WebhookEndpoint, WebhookEvent
from webhooks.services.processing import purge_old_events

ROWS = int(os.environ.get("BENCH_PURGE_ROWS", "1000000"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "4"))
ROUNDS = 3
TARGET = 2.0


def build_expired(endpoint_id: int) -> None:
    bench_scale.PG = db.vendor == "postgresql"
    bench_scale.insert(
        "webhooks_webhookevent",
        {
            "endpoint_id": str(endpoint_id),
            "event_id": "'old_' || i",
            "event_type": "'push'",
            "body": bench_scale.blob("'{\"old\": ' || i || '}'"),
            "headers": bench_scale.json_text("{}"),
            "received_at": bench_scale.ts("40 * 86400 + i * 0.1"),
            "status": "'processed'",
            "attempts": "1",
            "next_attempt_at": "NULL",
            "lease_until": "NULL",
            "enqueued_at": "NULL",
            "last_error": "''",
            "verified_by": "'github'",
            "source_ip": "'127.0.0.1'",
            "correlation_id": "'old-' || i",
            "processed_at": "NULL",
            "resolution_note": "''",
        },
        1,
        ROWS,
    )
    with db.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if bench_scale.PG else "ANALYZE")


class Purger(threading.Thread):
    """Purge passes back to back while ``going`` is set (``idle`` is set between passes),
    until ``stop`` is set or nothing is left."""

    def __init__(self):
        super().__init__(daemon=True)
        self.going, self.idle, self.stop = threading.Event(), threading.Event(), threading.Event()
        self.deleted, self.passes, self.done = 0, 0, False
        self.idle.set()

    def run(self):
        from django.db import close_old_connections

        try:
            while not self.stop.is_set():
                if not self.going.wait(timeout=0.2):
                    continue
                self.idle.clear()
                deleted = purge_old_events()
                self.idle.set()
                self.deleted += deleted
                self.passes += 1
                if not deleted:
                    self.done = True
                    break
        finally:
            self.idle.set()
            close_old_connections()

    def pause(self):
        self.going.clear()
        self.idle.wait(timeout=120)


def run() -> None:
    print(f"== Purge under load: {ROWS:,} expired events purged while signed deliveries arrive ==")
    secret = secrets.token_hex(20)
    connection = Connection.objects.create(
        name="bench-purge", slug="bench-purge", base_url="https://partner.example.test"
    )
    connection.retention_days = 30
    connection.save()
    create_credential(connection, CredentialKind.WEBHOOK_SIGNING_SECRET, secret)
    endpoint = WebhookEndpoint.objects.create(
        connection=connection, slug="bench-purge", scheme="github"
    )
    started = time.perf_counter()
    build_expired(endpoint.pk)
    print(f"  {ROWS:,} expired events built in {time.perf_counter() - started:.0f} s")
    body = signing.fixture("github", "push")
    headers = {**signing.github_headers(body, secret, "unused"), "Content-Type": "application/json"}
    headers.pop("X-GitHub-Delivery")
    port = free_port()
    server = start_gunicorn(port)
    url, path = f"http://127.0.0.1:{port}", f"/webhooks/{endpoint.slug}/"
    quiet, busy = [], []
    purger = Purger()
    purger.start()
    try:
        loadgen.run(url, path, body, headers, seconds=1)  # warm-up
        for number in range(1, ROUNDS + 1):
            purger.pause()
            result = loadgen.run(url, path, body, headers, seconds=SECONDS)
            show(f"round {number}: quiet", result)
            quiet.append(result)
            purger.going.set()
            result = loadgen.run(url, path, body, headers, seconds=SECONDS)
            show(f"round {number}: during the purge", result)
            busy.append(result)
            if purger.done:
                print("  the purge finished before this round ended: more rows would measure it")
                break
    finally:
        purger.stop.set()
        purger.join(timeout=120)
        stop(server)
    left = WebhookEvent.objects.filter(event_id__startswith="old_").count()
    p99_quiet = statistics.median(r.p99_ms for r in quiet)
    p99_busy = statistics.median(r.p99_ms for r in busy)
    ratio = p99_busy / p99_quiet
    verdict = "meets" if ratio <= TARGET else "ABOVE"
    print(
        f"  purged {purger.deleted:,} rows in {purger.passes} passes during the loads "
        f"({left:,} left); signed p99 quiet {p99_quiet:.1f} ms, during the purge "
        f"{p99_busy:.1f} ms: {ratio:.2f} times (target <= {TARGET:.1f}: {verdict})"
    )
