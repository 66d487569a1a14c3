"""Two nodes: the hub on PostgreSQL + Redis with two "machines" on this one — each its own
gunicorn, its own qcluster and its own sweeper, sharing one database and one Redis — and the
sandbox CRM (answering in 50 ms) as the partner, in a gunicorn of its own.

1. Rate: a backlog of events, each an upsert flow at the CRM, drained by one node's cluster,
   then an equal backlog by both clusters; the ratio of the two rates (target >= 1.7: the
   partner's latency is the bound, not the CPU; two workers per node on this 2-core machine).
2. A node lost: signed deliveries offered to both nodes in turn; half way, every process of
   node 2 is killed with SIGKILL (its gunicorn, its workers, its sweeper). Deliveries node 2
   cannot take go to node 1 (as a load balancer would send them). Then: every delivery that
   got a 2xx is processed, and the CRM holds each customer exactly once — nothing lost,
   nothing applied twice; node 1 finished node 2's work.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from contextlib import suppress

import requests

from flows.models import FlowRun
from sandbox.emitter import payment_event
from sandbox.models import SandboxContact, SandboxState
from tests import signing
from tests.bench.bench_e2e import clean_slate, webhook_flow
from tests.bench.bench_ingest import start_cluster, start_gunicorn, stop
from tests.bench.bench_processing import payment_backlog, wait_for_cluster
from tests.processes import free_port, start
from webhooks.models import WebhookEvent
from webhooks.services.queue import enqueue_processing

WORKERS = 2  # per node
BACKLOG = int(os.environ.get("BENCH_NODES_BACKLOG", "300"))
DELIVERIES = int(os.environ.get("BENCH_NODES_DELIVERIES", "400"))
RATE = 20.0  # deliveries offered per second
LEASE = "15"  # seconds: how soon node 1 takes back what node 2's killed workers held
CAP = 180
TARGET = 1.7


class Node:
    def __init__(self, name: str):
        self.name, self.port = name, free_port()
        env = {**os.environ, "HUB_WEBHOOK_LEASE_SECONDS": LEASE}
        os.environ["HUB_WEBHOOK_LEASE_SECONDS"] = LEASE  # this process's sweeps too
        self.web = start_gunicorn(self.port, workers=2)
        self.cluster = start_cluster(Q_WORKERS=str(WORKERS), HUB_WEBHOOK_LEASE_SECONDS=LEASE)
        self.sweeper = start(["webhooks", "sweep", "--loop", "--every", "1"], env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL to every process of the node (each runs in its own process group)."""
        for process in (self.web, self.cluster, self.sweeper):
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop(self) -> None:
        for process in (self.sweeper, self.cluster, self.web):
            stop(process)


def drain_rate(endpoint, prefix: str, clusters: int) -> float:
    pks = payment_backlog(endpoint, prefix, prefix, BACKLOG)
    running = [start_cluster(Q_WORKERS=str(WORKERS)) for _ in range(clusters)]
    try:
        wait_for_cluster()
        started = time.monotonic()
        for pk in pks:
            enqueue_processing(pk)
        done = 0
        while time.monotonic() - started < CAP:
            done = WebhookEvent.objects.filter(pk__in=pks, status="processed").count()
            if done >= BACKLOG:
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - started
    finally:
        for cluster in running:
            stop(cluster)
    print(
        f"  {clusters} cluster(s) x {WORKERS} workers: {done}/{BACKLOG} in {elapsed:.1f} s = "
        f"{done / elapsed:.1f} events/s"
    )
    return done / elapsed


def post(session, url: str, path: str, body: bytes, headers: dict) -> int:
    try:
        return session.post(url + path, data=body, headers=headers, timeout=10).status_code
    except requests.RequestException:
        return 0


def lose_a_node(partner_url: str, key: str) -> None:
    flow, endpoint, secret = webhook_flow(partner_url, key, "nodes-kill")
    path = f"/webhooks/{endpoint.slug}/"
    nodes = [Node("node 1"), Node("node 2")]
    session = requests.Session()
    session.trust_env = False
    accepted, redirected, killed_at = set(), 0, None
    try:
        started = time.monotonic()
        for n in range(DELIVERIES):
            delay = started + n / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if n == DELIVERIES // 2:
                nodes[1].kill()
                killed_at = time.monotonic() - started
            email = f"nodes-{n}@example.test"
            body = json.dumps(payment_event(email=email)).encode()
            headers = {
                **signing.github_headers(body, secret, f"nodes-{n}"),
                "Content-Type": "application/json",
            }
            status = post(session, nodes[n % 2].url, path, body, headers)
            if status == 0 and n % 2:  # node 2 is gone: the load balancer tries node 1
                redirected += 1
                status = post(session, nodes[0].url, path, body, headers)
            if 200 <= status < 300:
                accepted.add(email)
        deadline = time.monotonic() + CAP
        while time.monotonic() < deadline:
            stored = WebhookEvent.objects.filter(endpoint=endpoint)
            if stored.count() >= len(accepted) and not stored.exclude(status="processed").exists():
                break
            time.sleep(0.5)
        finished = time.monotonic() - started
    finally:
        for node in nodes:
            node.stop()
    contacts = list(
        SandboxContact.objects.filter(email__startswith="nodes-").values_list("email", flat=True)
    )
    events = WebhookEvent.objects.filter(endpoint=endpoint)
    processed = events.filter(status="processed").count()
    lost = len(accepted - set(contacts))
    twice = len(contacts) - len(set(contacts))
    verdict = "holds" if not lost and not twice and processed == events.count() else "BROKEN"
    print(
        f"  {DELIVERIES} deliveries at {RATE:.0f}/s to two nodes; node 2 killed (SIGKILL, every "
        f"process) at {killed_at:.1f} s; {redirected} deliveries sent to node 1 instead"
    )
    runs = FlowRun.objects.filter(flow=flow, status="succeeded").count()
    print(
        f"  {len(accepted)} accepted (2xx), {events.count()} events stored, {processed} "
        f"processed ({runs} succeeded runs), "
        f"all done at {finished:.1f} s; CRM: {len(set(contacts))} customers, "
        f"{lost} accepted but missing, {twice} created twice: {verdict}"
    )


def run() -> None:
    from django.conf import settings

    print("== Two nodes: PostgreSQL + Redis, each node its own gunicorn, qcluster, sweeper ==")
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3") or not settings.REDIS_URL:
        print("  skipped: two nodes share PostgreSQL and Redis (set DATABASE_URL and REDIS_URL)")
        return
    clean_slate()
    key = secrets.token_urlsafe(24)
    SandboxState.objects.update_or_create(
        pk=1, defaults={"api_key": key, "log_requests": False, "latency_ms": 50}
    )
    port = free_port()
    partner = start_gunicorn(port, workers=8)
    url = f"http://127.0.0.1:{port}"
    try:
        _flow, endpoint, _secret = webhook_flow(url, key, "nodes-rate")
        one = drain_rate(endpoint, "rate-one-", 1)
        two = drain_rate(endpoint, "rate-two-", 2)
        verdict = "meets" if two / one >= TARGET else "BELOW"
        print(f"  two clusters / one: {two / one:.2f} (target >= {TARGET}: {verdict})")
        lose_a_node(url, key)
    finally:
        stop(partner)
        SandboxState.objects.filter(service="crm").update(latency_ms=0)
