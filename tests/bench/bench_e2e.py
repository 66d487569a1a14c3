"""The whole path, and one slow partner among others.

End to end (``e2e``): signed deliveries offered at a steady rate to gunicorn (the production
settings), each processed by a qcluster through a flow that upserts the customer at the sandbox
CRM answering in 50 ms (a lookup, then a create with an idempotency key). For each worker
count: deliveries accepted and completed per second, and the latency from receipt to the flow
run's end (the partner's answer), p50 and p99.

Bulkhead (``bulkhead``): two partners behind two connections, B answering in 50 ms, A either
healthy (50 ms) or hanging past its 5 s read timeout (its circuit opening after 5 failures).
The same mixed load of A and B events is processed once with A healthy and once with A
hanging; B's processing rate while A hangs is compared with B's rate while A is healthy
(target >= 0.80, the scale issue). Each round is a few seconds long, so a round's ratio is
noisy: ``BENCH_BULKHEAD_ROUNDS`` rounds (3) run on one cluster, each with new connections and
partners, and the median ratio is the result.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import tempfile
import threading
import time

import requests
from django.db import close_old_connections

from connectors.choices import CredentialKind
from connectors.engine.circuit import reset
from connectors.models import Connection
from connectors.services.credentials import create_credential
from flows.models import FlowRun
from sandbox.emitter import payment_event
from sandbox.models import SandboxContact, SandboxState
from tests import signing
from tests.bench import bench_flows
from tests.bench.bench_ingest import start_cluster, start_gunicorn, stop
from tests.bench.bench_processing import wait_for_cluster
from tests.partners import Reply, ScriptedServer
from tests.processes import free_port, start
from webhooks.models import WebhookEndpoint, WebhookEvent
from webhooks.services.queue import enqueue_processing

E2E_WORKERS = [int(n) for n in os.environ.get("BENCH_E2E_WORKERS", "2,4,8").split(",")]
E2E_RATE = 20  # deliveries offered per second
E2E_COUNT = int(os.environ.get("BENCH_E2E_DELIVERIES", "600"))
DRAIN_CAP = 120
BULKHEAD_EVENTS = int(os.environ.get("BENCH_BULKHEAD_EVENTS", "120"))
BULKHEAD_ROUNDS = int(os.environ.get("BENCH_BULKHEAD_ROUNDS", "3"))
BULKHEAD_TARGET = 0.80


def clean_slate() -> None:
    """Earlier benchmarks of the run leave work that is no one's here (the ingest benchmark's
    undrained events): resolve it and empty the queue, so that only this benchmark's work runs."""
    from django_q.brokers import get_broker

    WebhookEvent.objects.filter(status__in=["received", "retrying", "processing"]).update(
        status="resolved", resolution_note="left by an earlier benchmark", next_attempt_at=None
    )
    get_broker().purge_queue()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def offer(url: str, path: str, secret: str, prefix: str, count: int, rate: float) -> list[int]:
    """POST ``count`` signed deliveries at ``rate`` per second (four senders, paced by a
    schedule, so a slow answer does not slow the offer); returns the statuses."""
    statuses: list[int] = []
    lock = threading.Lock()
    started = time.monotonic()

    def send(numbers):
        session = requests.Session()
        session.trust_env = False
        for n in numbers:
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            body = json.dumps(payment_event(email=f"{prefix}{n}@example.test")).encode()
            headers = {
                **signing.github_headers(body, secret, f"{prefix}{n}"),
                "Content-Type": "application/json",
            }
            try:
                status = session.post(
                    url + path, data=body, headers=headers, timeout=10
                ).status_code
            except requests.RequestException:
                status = 0
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=send, args=(range(k, count, 4),)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def webhook_flow(url: str, key: str, slug: str):
    """The flows benchmark's upsert at the sandbox CRM, triggered by a GitHub-signed endpoint
    of the same slug; returns (flow, endpoint, signing secret)."""
    flow = bench_flows.setup(url, key, slug=slug)
    secret = secrets.token_hex(20)
    create_credential(flow.connection, CredentialKind.WEBHOOK_SIGNING_SECRET, secret)
    endpoint = WebhookEndpoint.objects.create(
        connection=flow.connection, slug=slug, scheme="github"
    )
    flow.trigger, flow.endpoint, flow.event_type = "webhook", endpoint, "*"
    flow.save()
    return flow, endpoint, secret


def e2e_round(url: str, key: str, workers: int) -> None:
    slug = f"e2e-{workers}w"
    flow, _endpoint, secret = webhook_flow(url, key, slug)
    cluster = start_cluster(Q_WORKERS=str(workers))
    sweeper = start(["webhooks", "sweep", "--loop"], dict(os.environ))  # as deployed
    try:
        wait_for_cluster()
        started = time.monotonic()
        statuses = offer(url, f"/webhooks/{slug}/", secret, f"{slug}-", E2E_COUNT, E2E_RATE)
        offered_for = time.monotonic() - started
        accepted = sum(200 <= s < 300 for s in statuses)
        done = 0
        while time.monotonic() - started < offered_for + DRAIN_CAP:
            done = FlowRun.objects.filter(flow=flow, status="succeeded").count()
            if done >= accepted:
                break
            time.sleep(0.25)
        elapsed = time.monotonic() - started
    finally:
        stop(sweeper)
        stop(cluster)
    latencies = [
        (run.finished_at - run.event.received_at).total_seconds()
        for run in FlowRun.objects.filter(flow=flow, status="succeeded").select_related("event")
    ]
    created = SandboxContact.objects.filter(email__startswith=f"{slug}-").count()
    print(
        f"  {workers} workers: {accepted}/{len(statuses)} accepted at {accepted / offered_for:.1f}"
        f"/s; {done} completed in {elapsed:.1f} s = {done / elapsed:.1f}/s; receipt to partner "
        f"answer p50 {percentile(latencies, 0.5) * 1000:.0f} ms, p99 "
        f"{percentile(latencies, 0.99) * 1000:.0f} ms; {created} contacts created at the CRM"
    )


def run_e2e() -> None:
    print(
        f"== End to end: {E2E_COUNT} signed deliveries offered at {E2E_RATE}/s, each an upsert "
        "flow at the sandbox CRM answering in 50 ms =="
    )
    clean_slate()
    key = secrets.token_urlsafe(24)
    SandboxState.objects.update_or_create(
        pk=1, defaults={"api_key": key, "log_requests": False, "latency_ms": 50}
    )
    port = free_port()
    server = start_gunicorn(port)
    try:
        for workers in E2E_WORKERS:
            e2e_round(f"http://127.0.0.1:{port}", key, workers)
    finally:
        stop(server)
        SandboxState.objects.filter(service="crm").update(latency_ms=0)


# -- bulkhead --------------------------------------------------------------------------------


class Partner:
    """A partner whose answers take 50 ms, or hang for 8 s (past a 5 s read timeout)."""

    def __init__(self):
        self.hanging = False
        self.server = ScriptedServer().start()
        self.server.script(lambda request: Reply(200, json={"ok": True}, delay=self.delay()))

    def delay(self) -> float:
        return 8.0 if self.hanging else 0.05


def partner_connection(slug: str, partner: Partner) -> Connection:
    connection = Connection.objects.create(
        name=slug,
        slug=slug,
        base_url=partner.server.url,
        auth_method="api_key_header",
        api_key_header_name="X-API-Key",
        read_timeout=5.0,
        retry_max_attempts=1,
        circuit_failure_threshold=5,
        circuit_cooldown_seconds=30,
    )
    create_credential(connection, CredentialKind.API_KEY, secrets.token_hex(12))
    reset(connection)
    return connection


def b_rate(label: str, endpoints: dict, count: int) -> float:
    """Queue ``count`` A and ``count`` B events, interleaved; B's processing rate."""
    rows = {}
    for name, endpoint in endpoints.items():
        rows[name] = [
            WebhookEvent.objects.create(
                endpoint=endpoint,
                event_id=f"{label}-{name}-{n}",
                event_type="push",
                body=b"{}",
                correlation_id=secrets.token_hex(8),
            ).pk
            for n in range(count)
        ]
    started = time.monotonic()
    for a, b in zip(rows["a"], rows["b"], strict=True):
        enqueue_processing(a)
        enqueue_processing(b)
    done = 0
    while time.monotonic() - started < DRAIN_CAP:
        done = WebhookEvent.objects.filter(pk__in=rows["b"], status="processed").count()
        if done >= count:
            break
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    a_done = WebhookEvent.objects.filter(pk__in=rows["a"], status="processed").count()
    print(
        f"  {label}: B {done}/{count} processed in {elapsed:.1f} s = {done / elapsed:.1f}/s "
        f"(A: {a_done}/{count} processed meanwhile)"
    )
    return done / elapsed


def bulkhead_round(number: int) -> tuple[dict, dict]:
    """New partners, connections and endpoints under the handlers' slugs (an earlier round's
    are renamed: their slow flag, slots and waiting work stay theirs)."""
    clean_slate()
    suffix = f"-round-{number}"
    for model, slugs in (
        (Connection, ["slow-partner", "fast-partner"]),
        (WebhookEndpoint, ["bulk-slow", "bulk-fast"]),
    ):
        for old in model.objects.filter(slug__in=slugs):
            old.slug += suffix
            old.save(update_fields=["slug"])  # its signal drops every process's cached copy
    partners = {"a": Partner(), "b": Partner()}
    endpoints = {}
    for name, connection_slug, endpoint_slug in (
        ("a", "slow-partner", "bulk-slow"),
        ("b", "fast-partner", "bulk-fast"),
    ):
        connection = partner_connection(connection_slug, partners[name])
        endpoints[name] = WebhookEndpoint.objects.create(
            connection=connection, slug=endpoint_slug, unsigned=True
        )
    return partners, endpoints


def run_bulkhead() -> None:
    from django.conf import settings

    workers = settings.Q_CLUSTER["workers"]
    print(
        f"== Bulkhead: B answers in 50 ms; A healthy, then hanging past its read timeout "
        f"({workers} workers, default share per connection, {BULKHEAD_ROUNDS} rounds) =="
    )
    env = {
        "HUB_HANDLER_MODULES": "tests.webhook_handlers",
        "HUB_TEST_MARKER_DIR": tempfile.mkdtemp(prefix="hub-bulkhead-"),
    }
    clean_slate()
    cluster = start_cluster(Q_WORKERS=str(workers), **env)
    sweeper = start(["webhooks", "sweep", "--loop", "--every", "1"], {**os.environ, **env})
    ratios = []
    try:
        wait_for_cluster()
        for number in range(1, BULKHEAD_ROUNDS + 1):
            partners, endpoints = bulkhead_round(number)
            try:
                healthy = b_rate(f"round {number}, A healthy", endpoints, BULKHEAD_EVENTS)
                partners["a"].hanging = True
                hanging = b_rate(f"round {number}, A hanging", endpoints, BULKHEAD_EVENTS)
            finally:
                for partner in partners.values():
                    partner.server.stop()  # a call still hanging at A ends now
            ratios.append(hanging / healthy)
            print(
                f"  round {number}: B's rate while A hangs / while A is healthy: {ratios[-1]:.2f}"
            )
    finally:
        stop(sweeper)
        stop(cluster)
        close_old_connections()
    ratio = statistics.median(ratios)
    verdict = "meets" if ratio >= BULKHEAD_TARGET else "BELOW"
    print(
        f"  B's rate while A hangs / while A is healthy, median of {len(ratios)}: {ratio:.2f} "
        f"(target >= {BULKHEAD_TARGET:.2f}: {verdict})"
    )
