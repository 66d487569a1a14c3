"""Processing with a flow against a realistic partner: stored webhook events drained by one
``qcluster`` with two workers, each event running an upsert flow (a lookup, then a create with
an idempotency key) at the sandbox CRM answering every request after 50 ms.

The ideal rate is the workers' bound: ``workers ÷ the partner time one event needs``, that
time being measured in the same run by a raw ``requests`` loop making the same two calls
(so the partner's own handling is counted as the partner's). The ratio is the hub's drain rate
against that ideal: what the hub's own work per event (claim, mapping, run and call rows,
idempotency record, attempt) costs a worker beside the partner's time.
"""

from __future__ import annotations

import json
import os
import secrets
import time

from django_q.models import Success
from django_q.tasks import async_task

from flows.models import FlowRun
from sandbox.emitter import payment_event
from sandbox.models import SandboxContact, SandboxState
from tests.bench import bench_flows
from tests.bench.bench_ingest import start_cluster, start_gunicorn, stop
from tests.processes import free_port
from webhooks.models import WebhookEndpoint, WebhookEvent
from webhooks.services.queue import enqueue_processing

COUNT = int(os.environ.get("BENCH_PROCESSING_EVENTS", "240"))
WORKERS = 2
PARTNER_LATENCY_MS = 50
TARGET = 0.80
CAP_SECONDS = 120


def payment_backlog(endpoint, event_prefix: str, email_prefix: str, count: int) -> list[int]:
    """``count`` stored payment events on ``endpoint``, each a new customer; their pks."""
    WebhookEvent.objects.bulk_create(
        WebhookEvent(
            endpoint=endpoint,
            event_id=f"{event_prefix}{i}",
            event_type="payment.succeeded",
            body=json.dumps(payment_event(email=f"{email_prefix}{i}@example.test")).encode(),
            correlation_id=secrets.token_hex(8),
        )
        for i in range(count)
    )
    return list(
        WebhookEvent.objects.filter(
            endpoint=endpoint, event_id__startswith=event_prefix
        ).values_list("pk", flat=True)
    )


def wait_for_cluster(cap: float = 30.0) -> None:
    """Until the cluster runs a trivial task: its start-up is not processing time."""
    Success.objects.filter(func="tests.bench.tasks.noop").delete()
    async_task("tests.bench.tasks.noop", 0)
    deadline = time.monotonic() + cap
    while time.monotonic() < deadline:
        if Success.objects.filter(func="tests.bench.tasks.noop").exists():
            return
        time.sleep(0.1)
    raise RuntimeError("the cluster did not start")


def run() -> None:
    print(
        f"== Processing: {COUNT} webhook events, one upsert flow each, {WORKERS} workers, "
        f"sandbox CRM answering in {PARTNER_LATENCY_MS} ms =="
    )
    key = secrets.token_urlsafe(24)
    SandboxState.objects.update_or_create(
        pk=1,
        defaults={"api_key": key, "log_requests": False, "latency_ms": PARTNER_LATENCY_MS},
    )
    port = free_port()
    server = start_gunicorn(port)
    url = f"http://127.0.0.1:{port}"
    cluster = None
    try:
        flow = bench_flows.setup(url, key, slug="bench-processing")
        endpoint = WebhookEndpoint.objects.create(
            connection=flow.connection, slug="bench-processing", scheme=""
        )
        flow.trigger, flow.endpoint = "webhook", endpoint
        flow.save()
        specs = flow.mapping.specs()
        from flows.mapping import map_or_raise

        bodies = [
            map_or_raise(specs, e).output for e in bench_flows.payloads("proc-raw-", COUNT // 4)
        ]
        raw = bench_flows.raw_rate(url, key, bodies, "proc-raw")
        partner_seconds = 1 / raw  # the partner's time for one event's two calls
        ideal = WORKERS / partner_seconds
        pks = payment_backlog(endpoint, "proc-", "proc", COUNT)
        cluster = start_cluster(Q_WORKERS=str(WORKERS))
        wait_for_cluster()
        started = time.monotonic()
        for pk in pks:
            enqueue_processing(pk)
        done = 0
        while time.monotonic() - started < CAP_SECONDS:
            done = WebhookEvent.objects.filter(endpoint=endpoint, status="processed").count()
            if done >= COUNT:
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - started
    finally:
        if cluster is not None:
            stop(cluster)
        stop(server)
        SandboxState.objects.filter(service="crm").update(latency_ms=0)
    rate = done / elapsed
    ratio = rate / ideal
    verdict = "meets" if ratio >= TARGET else "BELOW"
    created = SandboxContact.objects.filter(email__startswith="proc").exclude(
        email__startswith="proc-raw"
    )
    runs = FlowRun.objects.filter(flow=flow, status="succeeded").count()
    print(
        f"  partner time per event (raw loop, 2 calls): {partner_seconds * 1000:.1f} ms; ideal "
        f"{ideal:.1f} events/s with {WORKERS} workers"
    )
    print(
        f"  hub: {done}/{COUNT} processed in {elapsed:.1f}s = {rate:.1f} events/s; ratio "
        f"{ratio:.2f} (target >= {TARGET:.2f}: {verdict}); {created.count()} contacts created, "
        f"{runs} runs succeeded (expected {COUNT} each)"
    )
