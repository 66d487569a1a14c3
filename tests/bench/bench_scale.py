"""Scale: the pages an operator opens every day, at 100 k and 1 M rows (and at
``BENCH_SCALE_ROWS``, e.g. 10 M), each as a median of timed requests and as a ratio to the same
page at 100 k rows.

Rows are built fast with one ``INSERT … SELECT`` per table over a generated series (the
benchmark only: the hub writes rows through the ORM): N webhook events (a 1 KB body each), N
API calls, N/10 flow runs and attempts, N/1000 sync runs, spread over time as a busy shop's
would be (an event every half second). Pages are requested in-process through Django's test
client as a superuser, DEBUG off, after ``ANALYZE``.

Targets (the scale issue): on PostgreSQL, every page under 300 ms at 10 M rows and within 1.5 times
of its time at 100 k; on SQLite, under 500 ms at 1 M.
"""

from __future__ import annotations

import os
import statistics
import time
from urllib.parse import urlencode

from django.db import connection as db

SIZES = [int(n) for n in os.environ.get("BENCH_SCALE_SIZES", "100000,1000000").split(",")]
EXTRA = int(os.environ.get("BENCH_SCALE_ROWS", "0") or 0)
if EXTRA and EXTRA not in SIZES:
    SIZES = sorted({*SIZES, EXTRA})
REPEAT = 7
PG = None  # set in run()


def ts(seconds_ago: str) -> str:
    if PG:
        return f"(now() - ({seconds_ago}) * interval '1 second')"
    return f"strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || ({seconds_ago}) || ' seconds')"


def blob(text: str) -> str:
    return f"convert_to({text}, 'UTF8')" if PG else f"CAST({text} AS BLOB)"


def padding(chars: int) -> str:
    return f"repeat('0', {chars})" if PG else f"hex(zeroblob({chars // 2}))"


def json_text(text: str) -> str:
    return f"'{text}'::jsonb" if PG else f"'{text}'"


def pick(ids: list[int], by: str = "i") -> str:
    """One of ``ids`` by ``i`` modulo their count."""
    cases = " ".join(f"WHEN {n} THEN {pk}" for n, pk in enumerate(ids[:-1]))
    return f"(CASE ({by}) % {len(ids)} {cases} ELSE {ids[-1]} END)"


def insert(table: str, columns: dict[str, str], first: int, last: int) -> None:
    """``INSERT INTO table`` one row per ``i`` in [first, last], each column an expression."""
    if last < first:
        return
    names = ", ".join(columns)
    values = ", ".join(columns.values())
    if PG:
        sql = (
            f"INSERT INTO {table} ({names}) SELECT {values} "
            f"FROM generate_series({first}, {last}) AS s(i)"
        )
    else:
        sql = (
            f"WITH RECURSIVE s(i) AS (SELECT {first} UNION ALL SELECT i + 1 FROM s "
            f"WHERE i < {last}) INSERT INTO {table} ({names}) SELECT {values} FROM s"
        )
    with db.cursor() as cursor:
        cursor.execute(sql)


def set_sequences() -> None:
    if not PG:
        return
    with db.cursor() as cursor:
        for table in TABLES:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(max(id), 1) FROM {table}))"
            )


TABLES = [
    "webhooks_webhookevent",
    "webhooks_eventattempt",
    "connectors_apicall",
    "flows_flowrun",
    "syncs_syncrun",
]


def id_offsets() -> dict[str, int]:
    """Each table's highest id before the benchmark (another benchmark may have left rows)."""
    with db.cursor() as cursor:
        out = {}
        for table in TABLES:
            cursor.execute(f"SELECT COALESCE(max(id), 0) FROM {table}")
            out[table] = cursor.fetchone()[0]
    return out


def grow(config: dict, current: int, target: int) -> None:
    """Add rows ``current + 1`` … ``target`` (newest first: row 1 is the most recent)."""
    endpoints, connections, flows = config["endpoints"], config["connections"], config["flows"]
    base = config["ids"]
    events, runs = base["webhooks_webhookevent"], base["flows_flowrun"]
    failing = "i % 50 = 7"
    insert(
        "webhooks_webhookevent",
        {
            "id": f"{events} + i",
            "endpoint_id": pick(endpoints),
            "event_id": "'evt_' || i",
            "event_type": "(CASE i % 4 WHEN 0 THEN 'payment.succeeded' WHEN 1 THEN "
            "'payment.failed' WHEN 2 THEN 'customer.updated' ELSE 'refund.created' END)",
            "body": blob(
                '\'{"id": "evt_\' || i || \'", "data": {"pad": "\' || '
                + padding(1000)
                + " || '\"}}'"
            ),
            "headers": json_text('{"content-type": "application/json"}'),
            "received_at": ts("i * 0.5"),
            "status": f"(CASE WHEN {failing} THEN 'failed' WHEN i % 500 = 3 THEN 'dead' "
            "ELSE 'processed' END)",
            "attempts": "1",
            "next_attempt_at": "NULL",
            "lease_until": "NULL",
            "enqueued_at": "NULL",
            "last_error": f"(CASE WHEN {failing} THEN 'HTTP 503 from the CRM' ELSE '' END)",
            "verified_by": "'standard_webhooks'",
            "source_ip": "'127.0.0.1'",
            "correlation_id": "'corr-' || i",
            "processed_at": ts("i * 0.5 - 0.2"),
            "resolution_note": "''",
        },
        current + 1,
        target,
    )
    insert(
        "connectors_apicall",
        {
            "id": f"{base['connectors_apicall']} + i",
            "connection_id": pick(connections),
            "created_at": ts("i * 0.5 - 0.1"),
            "method": "'POST'",
            "path": "'/contacts/' || i",
            "status_code": f"(CASE WHEN {failing} THEN 503 ELSE 200 END)",
            "duration_ms": "50 + i % 100",
            "attempt": "1",
            "correlation_id": "'corr-' || i",
            "idempotency_key": "'idem-' || i",
            "error_kind": f"(CASE WHEN {failing} THEN 'http_5xx' WHEN i % 997 = 5 THEN "
            "'timeout' ELSE '' END)",
            "error_message": f"(CASE WHEN {failing} THEN 'HTTP 503' ELSE '' END)",
            "request_bytes": "120",
            "response_bytes": "240",
            "quota_remaining": "NULL",
            "quota_reset_at": "NULL",
            "run_ref": f"(CASE WHEN i % 10 = 0 THEN 'flow_run:' || ({runs} + i / 10) ELSE '' END)",
        },
        current + 1,
        target,
    )
    tenth = (current // 10 + 1, target // 10)
    insert(
        "flows_flowrun",
        {
            "id": f"{runs} + i",
            "flow_id": pick(flows),
            "trigger": "'webhook'",
            "trigger_ref": "'evt_' || (i * 10)",
            "event_id": f"{events} + i * 10",
            "status": "(CASE WHEN i % 50 = 7 THEN 'failed' ELSE 'succeeded' END)",
            "outcome": "(CASE WHEN i % 3 = 0 THEN 'created' ELSE 'updated' END)",
            "record_id": "'rec_' || i",
            "started_at": ts("i * 5"),
            "lease_until": "NULL",
            "finished_at": ts("i * 5 - 0.1"),
            "duration_ms": "120",
            "error": "''",
            "correlation_id": "'corr-' || (i * 10)",
        },
        *tenth,
    )
    insert(
        "webhooks_eventattempt",
        {
            "id": f"{base['webhooks_eventattempt']} + i",
            "event_id": f"{events} + i * 10",
            "number": "1",
            "started_at": ts("i * 5"),
            "duration_ms": "110",
            "outcome": "'processed'",
            "error": "''",
        },
        *tenth,
    )
    insert(
        "syncs_syncrun",
        {
            "id": f"{base['syncs_syncrun']} + i",
            "job_id": str(config["job"]),
            "trigger": "'schedule'",
            "status": "'succeeded'",
            "mode": "'incremental'",
            "started_at": ts("i * 500"),
            "finished_at": ts("i * 500 - 3"),
            **{name: "1" for name in ("pages", "fetched", "updated")},
            **{name: "0" for name in ("created", "unchanged", "failed", "disappeared")},
            "cursor_before": json_text("{}"),
            "cursor_after": json_text("{}"),
            "page_state": json_text("{}"),
            "errors": json_text("[]"),
            "resumed": "0",
            "next_attempt_at": "NULL",
            "message": "''",
            "skips": "0",
            "correlation_id": "'sync-' || i",
        },
        current // 1000 + 1,
        target // 1000,
    )
    set_sequences()
    with db.cursor() as cursor:  # what autovacuum does on a live database (statistics, and
        cursor.execute("VACUUM ANALYZE" if PG else "ANALYZE")  # the map index-only scans use)


def configure() -> dict:
    from connectors.models import Connection
    from flows.models import Flow, Mapping, MappingRule
    from syncs.models import SyncJob
    from webhooks.models import WebhookEndpoint

    connections, endpoints, flows = [], [], []
    mapping = Mapping.objects.create(slug="scale-map", name="Scale")
    MappingRule.objects.create(mapping=mapping, position=1, source="data.email", target="email")
    for n in range(3):
        conn = Connection.objects.create(
            slug=f"scale-{n}",
            name=f"Scale {n}",
            base_url="http://127.0.0.1:9/api",
            owner="ops@example.test",
            purpose="Scale benchmark",
        )
        endpoint = WebhookEndpoint.objects.create(connection=conn, slug=f"scale-{n}", unsigned=True)
        flow = Flow.objects.create(
            slug=f"scale-{n}",
            name=f"Scale {n}",
            trigger="webhook",
            endpoint=endpoint,
            event_type="payment.succeeded",
            connection=conn,
            mapping=mapping,
            method="POST",
            path="/contacts",
        )
        connections.append(conn.pk)
        endpoints.append(endpoint.pk)
        flows.append(flow.pk)
    job = SyncJob.objects.create(
        slug="scale-sync",
        name="Scale sync",
        cron="0 * * * *",
        source_connection_id=connections[0],
        source_path="/contacts",
        mapping=mapping,
        object_type="contact",
    )
    synthesize_rollups(connections, endpoints)
    return {
        "connections": connections,
        "endpoints": endpoints,
        "flows": flows,
        "job": job.pk,
        "ids": id_offsets(),
    }


def synthesize_rollups(connections: list[int], endpoints: list[int]) -> None:
    """The rollups a hub keeps whatever the size of its tables: minute rows for the last 3
    days and hour rows for 400 days, per connection and endpoint (their number depends on time
    and connections, not on rows), so the dashboard reads what it would in production."""
    from datetime import timedelta

    from django.utils import timezone

    from monitoring.models import HOUR, MINUTE, CallRollup, EventRollup

    now = timezone.now().replace(second=0, microsecond=0)
    calls, events = [], []
    for minutes, resolution, count in ((1, MINUTE, 3 * 1440), (60, HOUR, 400 * 24)):
        for n in range(count):
            if resolution == MINUTE:
                start = now - timedelta(minutes=n)
            else:
                start = now.replace(minute=0) - timedelta(days=3, hours=n)
            for pk in connections:
                calls.append(
                    CallRollup(
                        connection_id=pk,
                        start=start,
                        resolution=resolution,
                        calls=120 * minutes,
                        ok=115 * minutes,
                        server_errors=5 * minutes,
                        duration_ms_sum=120 * minutes * 80,
                        latency=[
                            0,
                            20 * minutes,
                            60 * minutes,
                            30 * minutes,
                            10 * minutes,
                            0,
                            0,
                            0,
                            0,
                            0,
                        ],
                        final=n > 10 or resolution == HOUR,
                    )
                )
            for pk in endpoints:
                events.append(
                    EventRollup(
                        endpoint_id=pk,
                        start=start,
                        resolution=resolution,
                        received=40 * minutes,
                        processed=39 * minutes,
                        failed=minutes,
                        final=n > 10 or resolution == HOUR,
                    )
                )
    CallRollup.objects.bulk_create(calls, batch_size=2000)
    EventRollup.objects.bulk_create(events, batch_size=2000)


def pages(config: dict, rows: int) -> dict[str, str]:
    from django.utils import timezone

    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    dates = urlencode(  # the filter's own "Past 7 days" link
        {
            "received_at__gte": str(today - timezone.timedelta(days=7)),
            "received_at__lt": str(today + timezone.timedelta(days=1)),
        }
    )
    middle = rows // 2 or 1  # an event in the middle of the table: found by index, not by luck
    middle -= middle % 10  # … one that has an attempt, a flow run and calls
    events = "/admin/webhooks/webhookevent/"
    calls = "/admin/connectors/apicall/"
    return {
        "events list": events,
        "events: failed": f"{events}?status__exact=failed",
        "events: endpoint": f"{events}?endpoint__id__exact={config['endpoints'][1]}",
        "events: event type": f"{events}?event_type=refund.created",
        "events: last 7 days": f"{events}?{dates}",
        "events: search event id": f"{events}?q=evt_{middle}",
        "events: search correlation": f"{events}?q=corr-{middle}",
        "event page": f"{events}{config['ids']['webhooks_webhookevent'] + middle}/change/",
        "calls list": calls,
        "calls: connection": f"{calls}?connection__id__exact={config['connections'][2]}",
        "calls: 5xx": f"{calls}?status_class=5",
        "calls: error kind": f"{calls}?error_kind__exact=timeout",
        "calls of a correlation id": f"{calls}?q=corr-{middle}",
        "flow runs list": "/admin/flows/flowrun/",
        "sync runs list": "/admin/syncs/syncrun/",
        "connection page": f"/admin/connectors/connection/{config['connections'][0]}/change/",
        "connections list (health)": "/admin/connectors/connection/",
        "incidents list": "/admin/monitoring/incident/",
        "home page (dashboard)": "/admin/",
    }


def time_pages(client, urls: dict[str, str]) -> dict[str, float]:
    out = {}
    for name, url in urls.items():
        response = client.get(url)
        assert response.status_code == 200, (name, url, response.status_code)
        samples = []
        for _ in range(REPEAT):
            started = time.perf_counter()
            response = client.get(url)
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (name, url, response.status_code)
        out[name] = statistics.median(samples)
    return out


def run() -> None:
    global PG
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    PG = db.vendor == "postgresql"
    call_command("collectstatic", interactive=False, verbosity=0)  # pages as in production
    ceiling = 300 if PG else 500
    largest = SIZES[-1] if PG else max(s for s in SIZES if s <= 1_000_000)
    # (BENCH_SCALE_SIZES=1000,10000 tries the benchmark itself in seconds)
    config = configure()
    admin = User.objects.create_superuser("scale", "scale@example.test", "x")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(admin)
    results: dict[int, dict[str, float]] = {}
    current = 0
    for size in SIZES:
        if not PG and size > 1_000_000:
            break
        started = time.perf_counter()
        grow(config, current, size)
        current = size
        print(f"scale: {size:,} rows built in {time.perf_counter() - started:.0f} s", flush=True)
        from monitoring.services.incidents import run_pass

        started = time.perf_counter()
        run_pass()  # the incidents the rows call for (failed and dead events…)
        print(f"scale: one monitoring pass {time.perf_counter() - started:.1f} s", flush=True)
        results[size] = time_pages(client, pages(config, size))
    base = results[SIZES[0]]
    sizes = list(results)
    print(f"\nscale ({db.vendor}): median of {REPEAT} requests, ms")
    print(f"{'page':28}" + "".join(f"{s:>12,}" for s in sizes) + f"{'ratio':>8}  target")
    failures = 0
    for name in base:
        figures = [results[s][name] for s in sizes]
        ratio = results[largest][name] / base[name] if largest in results else float("nan")
        good = results.get(largest, {}).get(name, 0) < ceiling and (not PG or ratio <= 1.5)
        failures += not good
        print(
            f"{name:28}"
            + "".join(f"{f:12.0f}" for f in figures)
            + f"{ratio:8.2f}  {'ok' if good else 'MISSED'}"
        )
    target = f"under {ceiling} ms at {largest:,} rows" + (", within 1.5x of 100k" if PG else "")
    print(f"scale: {len(base) - failures} of {len(base)} pages {target}")
