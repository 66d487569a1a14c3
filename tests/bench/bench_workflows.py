"""Workflows (issue: workflows of several steps).

1. A three-step workflow — ``fetch`` the payment at the provider, ``upsert`` the customer in
   the CRM, ``call`` the invoicing tool — against the sandbox (its own gunicorn) answering in
   50 ms, against a raw ``requests`` loop making the same calls in the same order (GET the
   payment, GET the contact by email, POST the contact with its key, POST the invoice with its
   key). Target: runs per second >= 0.80 of the raw loop's.
2. The cost of a ``delay``: N runs (10,000 by default, ``BENCH_WAITING_RUNS``) wait for the
   same moment. While they wait, a real ``qcluster`` is running: its CPU time over the wait and
   the sweeper's pass (which finds nothing due) are measured against the same cluster and pass
   with no run waiting (the ceiling: its idle polling), and nothing is queued. Then they
   resume: the spread between each run's ``resume_at`` and the moment its delay step was
   found done is recorded (p50, p99, max), with the sweeper passing every second.
"""

from __future__ import annotations

import os
import secrets
import statistics
import time
from datetime import timedelta
from pathlib import Path

import requests
from django.utils import timezone

from connectors.choices import CredentialKind
from connectors.engine.circuit import reset
from connectors.models import Connection
from connectors.services.credentials import create_credential
from flows.models import Flow, FlowRun, FlowRunStep, Mapping, MappingRule
from flows.services import workflow
from flows.services.runner import run_flow
from sandbox.emitter import payment_event
from sandbox.models import SandboxState
from sandbox.services import store_payment
from tests.bench.bench_ingest import start_cluster, start_gunicorn, stop
from tests.processes import free_port

COUNT = int(os.environ.get("BENCH_WORKFLOW_RUNS", "30"))
ROUNDS = 3
LATENCY_MS = 50
TARGET = 0.80
WAITING = int(os.environ.get("BENCH_WAITING_RUNS", "10000"))
WAIT_SECONDS = 20
BASELINE_SECONDS = 15


def _connection(url: str, service: str, key: str) -> Connection:
    connection = Connection.objects.create(
        name=f"bench {service}",
        slug=f"bench-wf-{service}",
        base_url=f"{url}/sandbox/{service}/v1",
        idempotency_header_name="Idempotency-Key",
        retry_max_attempts=1,
    )
    create_credential(connection, CredentialKind.API_KEY, key)
    reset(connection)
    return connection


def _mapping(slug: str, rules: list[tuple[str, str]]) -> None:
    mapping = Mapping.objects.create(slug=slug, name=slug)
    for position, (source, target) in enumerate(rules, 1):
        MappingRule.objects.create(mapping=mapping, position=position, source=source, target=target)


def setup(url: str, keys: dict[str, str]) -> Flow:
    payments = _connection(url, "payments", keys["payments"])
    crm = _connection(url, "crm", keys["crm"])
    _connection(url, "invoicing", keys["invoicing"])
    _mapping(
        "bench-wf-contact",
        [
            ("steps.verify.data.customer.email", "email"),
            ("steps.verify.data.customer.last_name", "last_name"),
        ],
    )
    _mapping(
        "bench-wf-invoice",
        [("steps.verify.data.id", "payment"), ("steps.verify.data.amount", "amount")],
    )
    flow = Flow(
        slug="bench-wf",
        name="bench workflow",
        trigger="manual",
        connection=crm,
        steps=[
            {
                "name": "verify",
                "kind": "fetch",
                "connection": payments.slug,
                "path": "/payments/{trigger.data.object.id}",
            },
            {
                "name": "customer",
                "kind": "upsert",
                "mapping": "bench-wf-contact",
                "match_key": "email",
                "lookup_path": "/contacts?email={email}",
                "lookup_results": "results",
                "path": "/contacts",
                "update_path": "/contacts/{id}",
            },
            {
                "name": "invoice",
                "kind": "call",
                "connection": "bench-wf-invoicing",
                "path": "/invoices",
                "mapping": "bench-wf-invoice",
            },
        ],
    )
    flow.full_clean()
    flow.save()
    return flow


def events(prefix: str, count: int) -> list[dict]:
    made = [payment_event(email=f"{prefix}{i}@example.test") for i in range(count)]
    for event in made:
        store_payment(event)
    return made


def raw_rate(url: str, keys: dict[str, str], batch: list[dict], prefix: str) -> float:
    session = requests.Session()
    session.trust_env = False
    timeout = (3.05, 10)
    started = time.perf_counter()
    for i, event in enumerate(batch):
        payment_id = event["data"]["object"]["id"]
        payment = session.get(
            f"{url}/sandbox/payments/v1/payments/{payment_id}",
            headers={"X-API-Key": keys["payments"]},
            timeout=timeout,
        ).json()
        crm = {"X-API-Key": keys["crm"]}
        email = payment["customer"]["email"]
        session.get(
            f"{url}/sandbox/crm/v1/contacts", params={"email": email}, headers=crm, timeout=timeout
        ).raise_for_status()
        session.post(
            f"{url}/sandbox/crm/v1/contacts",
            json={"email": email, "last_name": payment["customer"]["last_name"]},
            headers={**crm, "Idempotency-Key": f"{prefix}-c-{i}"},
            timeout=timeout,
        ).raise_for_status()
        session.post(
            f"{url}/sandbox/invoicing/v1/invoices",
            json={"payment": payment["id"], "amount": payment["amount"]},
            headers={"X-API-Key": keys["invoicing"], "Idempotency-Key": f"{prefix}-i-{i}"},
            timeout=timeout,
        ).raise_for_status()
    return len(batch) / (time.perf_counter() - started)


def hub_rate(flow: Flow, batch: list[dict], prefix: str) -> float:
    started = time.perf_counter()
    for i, event in enumerate(batch):
        result = run_flow(flow, event, trigger="manual", trigger_ref=f"{prefix}-{i}")
        assert result.run.status == "succeeded", result.run.error
    return len(batch) / (time.perf_counter() - started)


def three_steps(url: str, keys: dict[str, str]) -> None:
    print(f"== Workflows: fetch + upsert + call vs raw requests, partner at {LATENCY_MS} ms ==")
    flow = setup(url, keys)
    raw_rate(url, keys, events("warm-raw-", 3), "warm-raw")
    hub_rate(flow, events("warm-hub-", 3), "warm-hub")
    pairs = []
    for round_ in range(ROUNDS):
        raw = raw_rate(url, keys, events(f"raw{round_}-", COUNT), f"raw{round_}")
        hub = hub_rate(flow, events(f"hub{round_}-", COUNT), f"hub{round_}")
        pairs.append((raw, hub))
        print(f"  raw {raw:6.2f} runs/s, hub {hub:6.2f} runs/s, ratio {hub / raw:.2f}")
    ratio = statistics.median(hub / raw for raw, hub in pairs)
    verdict = "meets" if ratio >= TARGET else "BELOW"
    print(f"  median ratio {ratio:.2f} (target >= {TARGET:.2f}: {verdict})")


def _cpu_seconds(group: int) -> float:
    """User + system CPU time of every process in the process group ``group``."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def _watch(cluster, until: float) -> tuple[float, list[float]]:
    """Run the sweeper's pass every second until ``until`` (nothing may be due); returns the
    cluster's CPU over the window, as a fraction of one core, and each pass's duration."""
    before, began, passes = _cpu_seconds(cluster.pid), time.monotonic(), []
    while time.monotonic() < until:
        start = time.perf_counter()
        assert workflow.resume_due() == 0
        passes.append(time.perf_counter() - start)
        time.sleep(1)
    window = time.monotonic() - began
    return (_cpu_seconds(cluster.pid) - before) / max(window, 0.001), passes


def waiting_runs() -> None:
    from django_q.brokers import get_broker

    print(f"== Workflows: {WAITING} runs waiting on a delay, then resuming ==")
    flow = Flow(
        slug="bench-wf-delay",
        name="bench delay",
        trigger="manual",
        connection=Connection.objects.get(slug="bench-wf-crm"),
        steps=[
            {"name": "wait", "kind": "delay", "until": "{at}"},
            {
                "name": "then",
                "kind": "condition",
                "when": [{"path": "steps.wait.until", "op": "exists"}],
            },
        ],
    )
    flow.full_clean()
    flow.save()
    # how fast runs start here, on a probe far in the future, so that all of them are made
    # before the moment they wait for
    probe = time.monotonic()
    later = (timezone.now() + timedelta(days=1)).isoformat()
    for i in range(100):
        run_flow(flow, {"at": later}, trigger="manual", trigger_ref=f"probe-{i}")
    per_run = (time.monotonic() - probe) / 100
    FlowRun.objects.filter(trigger_ref__startswith="probe-").delete()
    broker = get_broker()
    broker.purge_queue()
    cluster = start_cluster()
    try:
        time.sleep(3)  # its start-up is not waiting
        # the ceiling: the same cluster, and the same sweeper passes, with no run waiting
        idle, idle_passes = _watch(cluster, time.monotonic() + BASELINE_SECONDS)
        started = time.monotonic()
        at = timezone.now() + timedelta(seconds=WAIT_SECONDS + 1.5 * per_run * WAITING)
        for i in range(WAITING):
            run_flow(flow, {"at": at.isoformat()}, trigger="manual", trigger_ref=f"w-{i}")
        made = time.monotonic() - started
        print(f"  {WAITING} runs started and left waiting in {made:.1f} s")
        remaining = (at - timezone.now()).total_seconds() - 1
        waiting, passes = _watch(cluster, time.monotonic() + max(remaining, 0))
        if not passes:
            print("  the runs took longer to start than foreseen: no waiting window measured")
            waiting, passes = 0.0, [0.0]
        print(
            f"  cluster CPU, % of one core: {100 * waiting:.2f} while they waited, "
            f"{100 * idle:.2f} with none waiting (its idle polling); queue size "
            f"{broker.queue_size()}; sweeper pass (nothing due) median "
            f"{1000 * statistics.median(passes):.1f} ms with them, "
            f"{1000 * statistics.median(idle_passes):.1f} ms without"
        )
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            workflow.resume_due()
            if not FlowRun.objects.filter(flow=flow).exclude(status="succeeded").exists():
                break
            time.sleep(1)
    finally:
        stop(cluster)
    done = FlowRun.objects.filter(flow=flow, status="succeeded").count()
    lags = sorted(
        (finished - at).total_seconds()
        for finished in FlowRunStep.objects.filter(run__flow=flow, name="then").values_list(
            "finished_at", flat=True
        )
        if finished
    )
    if not lags:
        print(f"  none resumed ({done} succeeded)")
        return
    p50 = lags[len(lags) // 2]
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
    print(
        f"  resumed {done}/{WAITING}: after their time by p50 {p50:.1f} s, p99 {p99:.1f} s, "
        f"max {lags[-1]:.1f} s (a sweeper pass every second, 500 runs per pass, "
        f"in chunks of {workflow.RESUME_CHUNK} at most, 2 workers)"
    )


def run() -> None:
    keys = {service: secrets.token_urlsafe(24) for service in ("payments", "crm", "invoicing")}
    for service, key in keys.items():
        SandboxState.objects.update_or_create(
            service=service,
            defaults={"api_key": key, "log_requests": False, "latency_ms": LATENCY_MS},
        )
    port = free_port()
    server = start_gunicorn(port)
    url = f"http://127.0.0.1:{port}"
    try:
        time.sleep(1)
        three_steps(url, keys)
    finally:
        stop(server)
        SandboxState.objects.update(latency_ms=0)
    waiting_runs()
