"""Each connection's share of the workers (its bulkhead): a slow or hanging partner holds no
more workers than its limit, its other work waits (retried shortly, not counted as a failed
attempt, never lost), and the other connections' work flows."""

from __future__ import annotations

import secrets as pysecrets
import threading
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
import time_machine
from django.db import connection as db_connection
from django.utils import timezone

from connectors import hub
from connectors.choices import CredentialKind
from connectors.engine import budget, bulkhead
from connectors.engine.circuit import reset
from connectors.engine.errors import ConnectionBusyError
from connectors.models import ApiCall, Connection
from connectors.services.credentials import create_credential
from tests import signing
from tests.partners import Reply, ScriptedServer
from tests.processes import hub_process_env, purge_queue, start, stop, wait_for
from webhooks.handlers import handler
from webhooks.models import EventAttempt, WebhookEvent
from webhooks.services.processing import process_event


@handler(endpoint="bulk-inline", event_type="push")
def call_the_partner(event):
    hub.call("partner", "GET", "/records/1")


@pytest.mark.django_db
def test_a_worker_takes_a_slot_and_site_code_is_not_limited(api_connection):
    api_connection.max_concurrent_calls = 1
    api_connection.save()
    with budget.task_budget():  # a partner that answers in time is never limited
        assert bulkhead.acquire(api_connection) is None
        assert bulkhead.acquire(api_connection) is None
    bulkhead.observe(api_connection, 0.5)  # quick enough
    assert not bulkhead.is_slow(api_connection)
    bulkhead.observe(api_connection, 0.95)  # 0.9 of its 1 s read timeout: slow
    assert bulkhead.is_slow(api_connection)
    assert bulkhead.acquire(api_connection) is None  # outside a worker task: no limit
    with budget.task_budget():
        held = bulkhead.acquire(api_connection)
        with pytest.raises(ConnectionBusyError, match="1 call\\(s\\) already in flight"):
            bulkhead.acquire(api_connection)
        bulkhead.release(held)
        bulkhead.release(bulkhead.acquire(api_connection))  # free again
    api_connection.max_concurrent_calls = 0  # no limit
    with budget.task_budget():
        assert bulkhead.acquire(api_connection) is None


@pytest.mark.django_db
def test_while_another_connection_works_each_gets_its_share_from_the_first_attempt(
    api_connection,
):
    api_connection.max_concurrent_calls = 1
    api_connection.save()
    other = Connection.objects.create(
        name="Other", slug="other", base_url="http://127.0.0.1:9/", max_concurrent_calls=1
    )
    with budget.task_budget():
        assert bulkhead.acquire(api_connection) is None  # alone: not limited
        # the partner's connection started an attempt: the other one gets its share at once,
        # though neither was ever seen slow …
        taken = bulkhead.acquire(other)
        with pytest.raises(ConnectionBusyError, match="other: 1 call"):
            bulkhead.acquire(other)
        # … and so does the partner's, now that the other one works too
        held = bulkhead.acquire(api_connection)
        with pytest.raises(ConnectionBusyError, match="partner: 1 call"):
            bulkhead.acquire(api_connection)
        bulkhead.release(taken)
        bulkhead.release(held)
        assert not bulkhead.is_slow(api_connection) and not bulkhead.is_slow(other)
    # once the other connection has started nothing for ACTIVE_SECONDS, it is alone again
    later = timezone.now() + timedelta(seconds=bulkhead.ACTIVE_SECONDS + 1)
    with time_machine.travel(later), budget.task_budget():
        assert bulkhead.acquire(api_connection) is None
        assert bulkhead.acquire(api_connection) is None


def free_later(slot, seconds: float) -> threading.Thread:
    def free():
        time.sleep(seconds)
        bulkhead.release(slot)
        db_connection.close()  # the database cache's connection of this thread

    thread = threading.Thread(target=free)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_an_attempt_waits_briefly_for_a_partner_that_answers_in_time_not_for_a_slow_one(
    api_connection,
):
    busy = Connection.objects.create(
        name="Busy", slug="busy", base_url="http://127.0.0.1:9/", max_concurrent_calls=1
    )
    with budget.task_budget():
        bulkhead.acquire(api_connection)  # another connection works: each gets its share
        held = bulkhead.acquire(busy)
        thread = free_later(held, 0.2)
        started = time.monotonic()
        # its holder answers in time: the attempt waits for the slot instead of being refused
        taken = bulkhead.acquire(busy)
        assert taken is not None and time.monotonic() - started >= 0.15
        thread.join()
        # a holder that has held its slot longer than the wait: refused at once, not slow yet
        with time_machine.travel(datetime.now(UTC) + timedelta(seconds=1), tick=True):
            started = time.monotonic()
            with pytest.raises(ConnectionBusyError):
                bulkhead.acquire(busy)
            assert time.monotonic() - started < bulkhead.WAIT_FOR_SLOT_SECONDS
            assert not bulkhead.is_slow(busy)
        # longer than a slow attempt takes: its partner is slow before that attempt even ends
        with time_machine.travel(datetime.now(UTC) + timedelta(seconds=3), tick=True):
            with pytest.raises(ConnectionBusyError):
                bulkhead.acquire(busy)
            assert bulkhead.is_slow(busy)
        bulkhead.release(taken)


@pytest.mark.django_db
def test_the_more_work_waits_for_a_slow_connection_the_later_it_comes_back(api_connection):
    api_connection.max_concurrent_calls = 1
    api_connection.save()
    bulkhead.observe(api_connection, 60)
    with budget.task_budget():
        held = bulkhead.acquire(api_connection)
        delays = []
        for _ in range(40):
            with pytest.raises(ConnectionBusyError) as refused:
                bulkhead.acquire(api_connection)
            delays.append((refused.value.retry_at - datetime.now(UTC)).total_seconds())
        bulkhead.release(held)
    # the first comes back after HUB_BULKHEAD_RETRY_SECONDS (3 s, jittered); the fortieth
    # about 20 s later: about two a second for the connection's one slot
    assert 2 < delays[0] < 4
    assert 14 < delays[-1] < 26


@pytest.mark.django_db
def test_work_for_a_busy_connection_waits_without_a_call_or_a_counted_attempt(
    client, api_connection, partner, make_endpoint
):
    api_connection.max_concurrent_calls = 1
    api_connection.save()
    secret = pysecrets.token_hex(16)
    endpoint = make_endpoint("github", secret, slug="bulk-inline")
    body = signing.fixture("github", "push")
    response = client.post(
        f"/webhooks/{endpoint.slug}/",
        data=body,
        content_type="application/json",
        headers=signing.github_headers(body, secret, "busy-1"),
    )
    event = WebhookEvent.objects.get(pk=response.json()["event"])
    # the partner was slow, and another worker holds the connection's only slot
    bulkhead.observe(api_connection, 60)
    with budget.task_budget():
        held = bulkhead.acquire(api_connection)
    assert process_event(event.pk) == "waiting"
    event.refresh_from_db()
    assert event.status == "retrying" and event.attempts == 0
    assert 1 < (event.next_attempt_at - timezone.now()).total_seconds() < 5
    attempt = EventAttempt.objects.get(event=event)
    assert attempt.outcome == "waiting" and "already in flight" in attempt.error
    busy = ApiCall.objects.get(correlation_id=event.correlation_id)
    assert busy.error_kind == "busy" and busy.status_code is None
    assert partner.requests == []  # no call was made
    # the slot is free again: the next attempt calls, and is the event's first counted one
    bulkhead.release(held)
    WebhookEvent.objects.filter(pk=event.pk).update(next_attempt_at=timezone.now())
    assert process_event(event.pk) == "processed"
    event.refresh_from_db()
    assert event.attempts == 1 and len(partner.requests) == 1


def partner_connection(slug: str, server: ScriptedServer, limit: int | None) -> Connection:
    connection = Connection.objects.create(
        name=slug,
        slug=slug,
        base_url=server.url,
        auth_method="api_key_header",
        api_key_header_name="X-API-Key",
        read_timeout=5.0,
        retry_max_attempts=1,
        max_concurrent_calls=limit,
    )
    create_credential(connection, CredentialKind.API_KEY, pysecrets.token_hex(12))
    reset(connection)
    return connection


@pytest.mark.django_db(transaction=True)
def test_a_slow_partner_holds_one_worker_while_the_other_connection_flows(
    client, make_endpoint, tmp_path
):
    slow, fast = ScriptedServer().start(), ScriptedServer().start()
    slow.script(Reply(200, json={"ok": True}, delay=1.5))
    try:
        partner_connection("slow-partner", slow, 1)
        partner_connection("fast-partner", fast, 1)
        purge_queue()
        events = {"bulk-slow": [], "bulk-fast": []}
        for slug in events:
            secret = pysecrets.token_hex(16)
            make_endpoint("github", secret, slug=slug)
            body = signing.fixture("github", "push")
            for n in range(4):
                response = client.post(
                    f"/webhooks/{slug}/",
                    data=body,
                    content_type="application/json",
                    headers=signing.github_headers(body, secret, f"{slug}-{n}"),
                )
                assert response.status_code == 202
                events[slug].append(response.json()["event"])
        db_connection.close()
        env = hub_process_env(
            HUB_HANDLER_MODULES="tests.webhook_handlers",
            HUB_TEST_MARKER_DIR=str(tmp_path),
            Q_WORKERS="2",
            HUB_BULKHEAD_RETRY_SECONDS="0.5",
            HUB_BULKHEAD_SLOW_SECONDS="1",
        )
        cluster = start(["qcluster"], env)
        sweeper = start(["webhooks", "sweep", "--loop", "--every", "1"], env)
        try:
            wait_for(
                lambda: WebhookEvent.objects.filter(status="processed").count() == 8,
                90,
                "every event to be processed",
            )
        finally:
            stop(sweeper)
            stop(cluster)
        done = {e.pk: e.processed_at for e in WebhookEvent.objects.all()}
        # once its first answer showed it slow (1.5 s), the slow partner never had two calls
        # at once again …
        arrivals = sorted(r.at for r in slow.requests)
        assert len(arrivals) == 4
        later = [at for at in arrivals if at >= arrivals[0] + 1.5]
        assert len(later) >= 2
        assert all(b - a >= 1.4 for a, b in pairwise(later))
        # … while the fast one's events were done before the slow one's last
        assert max(done[pk] for pk in events["bulk-fast"]) < max(
            done[pk] for pk in events["bulk-slow"]
        )
        # waiting is not failing: no slow event used up its retry schedule
        assert set(WebhookEvent.objects.values_list("attempts", flat=True)) == {1}
        assert EventAttempt.objects.filter(outcome="waiting").exists()
    finally:
        slow.stop()
        fast.stop()


@pytest.mark.django_db
def test_a_flow_run_holds_one_slot_for_its_calls_and_a_busy_one_writes_no_run(
    api_connection, partner, make_endpoint
):
    from flows.models import FlowRun
    from tests.test_run_rows import stored_event, upsert_flow

    api_connection.max_concurrent_calls = 1
    api_connection.save()
    endpoint = make_endpoint("github", "s3cret", slug="bulk-flow")
    upsert_flow(api_connection, slug="bulk", trigger="webhook", endpoint=endpoint)
    partner.script(Reply(200, json=[]), Reply(201, json={"id": "c_1"}))
    event = stored_event(endpoint, "bf-1", {"email": "ada@example.test"})
    bulkhead.observe(api_connection, 60)
    with budget.task_budget():
        held = bulkhead.acquire(api_connection)
    assert process_event(event.pk) == "waiting"
    assert FlowRun.objects.count() == 0 and partner.requests == []
    bulkhead.release(held)
    WebhookEvent.objects.filter(pk=event.pk).update(next_attempt_at=timezone.now())
    # with the one slot free, the run's lookup and create both go through on it
    assert process_event(event.pk) == "processed"
    assert [r.method for r in partner.requests] == ["GET", "POST"]
    assert FlowRun.objects.get().status == "succeeded"
