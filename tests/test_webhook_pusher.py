"""The per-process pusher that queues stored events' processing after the request is answered
(with a broker outside the database): order, batches, flush, failures, fork and exit."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading

import pytest
from django_q.signing import SignedPackage

from tests import signing
from tests.processes import ROOT, dead_redis_broker
from webhooks.models import WebhookEvent
from webhooks.services import processing
from webhooks.services import queue as webhook_queue
from webhooks.services.queue import BackgroundPusher


def deliver(make_endpoint, post_webhook, caplog, capture_on_commit, slug, delivery):
    """A signed GitHub delivery to a new endpoint, its on-commit work run and the queue's
    errors captured; the delivery must be accepted (stored: the partner must not resend)."""
    secret = f"whsec-for-{slug}"
    endpoint = make_endpoint("github", secret, slug=slug)
    body = signing.fixture("github", "push")
    with (
        caplog.at_level(logging.ERROR, logger="webhooks.queue"),
        capture_on_commit(execute=True),
    ):
        response = post_webhook(endpoint, body, signing.github_headers(body, secret, delivery))
    assert response.status_code == 202
    return WebhookEvent.objects.get(endpoint=endpoint, event_id=delivery)


def collecting_pusher(**options):
    batches: list[list] = []
    return BackgroundPusher(batches.append, name="test-pusher", **options), batches


def test_items_are_pushed_in_order_one_batch_per_linger():
    pusher, batches = collecting_pusher(linger=0.5)
    for item in range(1, 6):
        pusher.submit(item)
    assert pusher.flush(timeout=10)
    pusher.submit(6)
    assert pusher.flush(timeout=10)
    # what arrived while the thread lingered went in one push; the next item in another
    assert batches == [[1, 2, 3, 4, 5], [6]]


def test_a_batch_holds_at_most_max_batch_items():
    pusher, batches = collecting_pusher(linger=0.5, max_batch=2)
    for item in range(1, 6):
        pusher.submit(item)
    assert pusher.flush(timeout=10)
    assert batches == [[1, 2], [3, 4], [5]]


def test_flush_says_when_the_push_did_not_finish_in_time():
    release = threading.Event()
    pushed = []

    def slow_push(batch):
        release.wait(10)
        pushed.extend(batch)

    pusher = BackgroundPusher(slow_push, name="test-pusher", linger=0)
    pusher.submit("a")
    assert pusher.flush(timeout=0.2) is False
    release.set()
    assert pusher.flush(timeout=10) is True
    assert pushed == ["a"]


def test_a_failing_push_is_logged_once_per_batch_and_the_next_batch_still_goes(caplog):
    calls = []

    def push(batch):
        calls.append(list(batch))
        if len(calls) == 1:
            raise ConnectionError("broker unreachable")

    pusher = BackgroundPusher(push, name="test-pusher", linger=0.5)
    pusher.submit(41)
    pusher.submit(42)
    with caplog.at_level(logging.ERROR, logger="webhooks.queue"):
        assert pusher.flush(timeout=10)  # a batch given up counts as handled
    pusher.submit(43)
    assert pusher.flush(timeout=10)
    assert calls == [[41, 42], [43]]
    (record,) = [r for r in caplog.records if r.name == "webhooks.queue"]
    assert "could not queue 2 webhook event(s) (the first: 41)" in record.getMessage()
    assert "sweeper" in record.getMessage()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() with threads running
def test_a_forked_child_pushes_from_its_own_thread_and_not_its_parents_items():
    release = threading.Event()
    pushed: list = []

    def push(batch):
        if os.getpid() == parent:
            release.wait(10)  # the parent's item is still waiting when the child is forked
        pushed.extend(batch)
        os.write(write_end, repr((os.getpid(), batch)).encode() + b"\n")

    parent = os.getpid()
    read_end, write_end = os.pipe()
    pusher = BackgroundPusher(push, name="test-pusher", linger=0)
    pusher.submit("parent's")
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            pusher.submit("child's")
            os._exit(0 if pusher.flush(timeout=10) else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    release.set()
    assert pusher.flush(timeout=10)
    os.close(write_end)
    with os.fdopen(read_end) as lines:
        reports = [eval(line) for line in lines]  # noqa: S307 - our own reprs
    assert reports == [(child, ["child's"]), (parent, ["parent's"])]


def test_what_is_still_waiting_is_pushed_when_the_process_exits(tmp_path):
    out = tmp_path / "pushed.txt"
    script = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
import django
django.setup()
from webhooks.services.queue import BackgroundPusher

def push(batch):
    with open({str(out)!r}, "a") as handle:
        handle.write(",".join(map(str, batch)) + "\\n")

pusher = BackgroundPusher(push, name="exit-test", linger=0.5)
for item in (1, 2, 3):
    pusher.submit(item)
# the interpreter exits here, within the linger: the exit hook waits for the push
"""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "integrations_site.settings", "DEBUG": "true"}
    done = subprocess.run([sys.executable, "-c", script], env=env, timeout=60, check=False)
    assert done.returncode == 0
    assert out.read_text() == "1,2,3\n"


@pytest.mark.django_db
def test_pushed_events_are_one_signed_task_each_in_the_order_given(make_endpoint):
    endpoint = make_endpoint("github", "s3cret-for-the-pusher", slug="gh-push")
    events = [
        WebhookEvent.objects.create(endpoint=endpoint, event_id=f"p-{n}", body=b"{}", headers={})
        for n in range(3)
    ]
    broker = webhook_queue.shared_broker()
    broker.purge_queue()
    webhook_queue._push_events([event.pk for event in events])
    assert broker.queue_size() == 3
    tasks = []
    for _ in range(3):
        ((ack_id, package),) = broker.dequeue()
        broker.acknowledge(ack_id)
        tasks.append(SignedPackage.loads(package))
    # no success result kept for them: the event and its attempts are the record
    assert [(t["func"], t["args"], t["name"], t["save"]) for t in tasks] == [
        ("webhooks.tasks.process_event", (event.pk,), f"webhook-event-{event.pk}", False)
        for event in events
    ]


@pytest.fixture
def database_queue(settings, monkeypatch):
    """django-q2's ORM broker on the default database, as this process's shared broker."""
    from django_q.brokers.orm import ORM

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "orm": "default"}
    broker = ORM(list_key="database-queue-test")
    monkeypatch.setattr(webhook_queue, "shared_broker", lambda: broker)
    return broker


@pytest.mark.django_db(transaction=True)  # the batch's own transaction is what is observed
def test_with_the_database_queue_a_batch_is_signed_first_then_written_whole_in_one_transaction(
    make_endpoint, monkeypatch, database_queue
):
    from django.db import OperationalError, connection
    from django_q.signals import pre_enqueue

    broker = database_queue
    endpoint = make_endpoint("github", "s3cret-for-the-batch", slug="gh-batch")
    pks = [
        WebhookEvent.objects.create(endpoint=endpoint, event_id=f"b-{n}", body=b"{}", headers={}).pk
        for n in range(3)
    ]
    # the write lock is held for the INSERTs alone: every package is built and signed by
    # async_task() before the batch's transaction opens, and every row is written inside it
    seen = []
    enqueue = broker.enqueue

    def built(sender, task, **kwargs):
        seen.append(("built", task["args"], connection.in_atomic_block))

    def written(package):
        seen.append(("written", SignedPackage.loads(package)["args"], connection.in_atomic_block))
        return enqueue(package)

    monkeypatch.setattr(broker, "enqueue", written)
    pre_enqueue.connect(built)
    try:
        webhook_queue._push_events(pks)
    finally:
        pre_enqueue.disconnect(built)
    assert seen == [("built", (pk,), False) for pk in pks] + [
        ("written", (pk,), True) for pk in pks
    ]
    assert broker.queue_size() == 3
    # a batch whose second row fails leaves none of its rows: the sweeper queues them all
    calls = []

    def second_fails(package):
        calls.append(package)
        if len(calls) == 2:
            raise OperationalError("database is locked")
        return enqueue(package)

    monkeypatch.setattr(broker, "enqueue", second_fails)
    with pytest.raises(OperationalError):
        webhook_queue._push_events(pks)
    assert len(calls) == 2
    assert broker.queue_size() == 3


@pytest.mark.django_db
def test_with_redis_down_a_delivery_is_still_accepted_and_the_sweeper_queues_it(
    make_endpoint, post_webhook, settings, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    # a broker outside the database whose Redis does not answer (nothing listens on the port)
    settings.Q_CLUSTER = {k: v for k, v in settings.Q_CLUSTER.items() if k != "orm"}
    down = dead_redis_broker()
    monkeypatch.setattr(webhook_queue, "shared_broker", lambda: down)
    event = deliver(
        make_endpoint, post_webhook, caplog, django_capture_on_commit_callbacks, "gh-out", "out-1"
    )
    assert event.status == "received"
    with caplog.at_level(logging.ERROR, logger="webhooks.queue"):
        assert webhook_queue.pusher.flush(timeout=30)
    (failure,) = [r for r in caplog.records if r.name == "webhooks.queue"]
    assert "could not queue 1 webhook event(s)" in failure.getMessage()
    # the failed connection was the pusher thread's, not the request's
    assert failure.threadName == "hub-webhook-pusher"
    # once Redis is back, the sweeper queues the stored event again (the row is the truth)
    monkeypatch.undo()
    working = webhook_queue.shared_broker()
    working.purge_queue()
    assert processing.sweep(requeue_after=0)["enqueued"] == 1
    ((_, package),) = working.dequeue()
    assert SignedPackage.loads(package)["args"] == (event.pk,)
    assert SignedPackage.loads(package)["save"] is False


@pytest.mark.django_db(transaction=True)  # the pusher thread writes with its own connection
def test_with_the_database_queue_a_failed_queue_row_loses_nothing(
    make_endpoint,
    post_webhook,
    monkeypatch,
    caplog,
    django_capture_on_commit_callbacks,
    database_queue,
):
    from django.db import OperationalError

    broker = database_queue
    enqueue = broker.enqueue

    def locked_queue(package):
        # what SQLite answers when another writer holds the lock past the busy timeout
        raise OperationalError("database is locked")

    monkeypatch.setattr(broker, "enqueue", locked_queue)
    event = deliver(
        make_endpoint, post_webhook, caplog, django_capture_on_commit_callbacks, "gh-lk", "lk-1"
    )
    with caplog.at_level(logging.ERROR, logger="webhooks.queue"):
        assert webhook_queue.pusher.flush(timeout=30)
    assert broker.queue_size() == 0
    (failure,) = [r for r in caplog.records if r.name == "webhooks.queue"]
    assert "could not queue 1 webhook event(s)" in failure.getMessage()
    assert failure.threadName == "hub-webhook-pusher"  # after the answer, not in the request
    monkeypatch.setattr(broker, "enqueue", enqueue)
    assert processing.sweep(requeue_after=0)["enqueued"] == 1
    ((_, package),) = broker.dequeue()
    assert SignedPackage.loads(package)["args"] == (event.pk,)


@pytest.mark.django_db
def test_with_django_q_sync_the_event_is_processed_on_commit_without_a_queue(
    make_endpoint, post_webhook, settings, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    from django_q.conf import Conf

    # django-q2's option: tasks run where queued (its settings are read once, at import)
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    monkeypatch.setattr(Conf, "SYNC", True)
    broker = webhook_queue.shared_broker()
    broker.purge_queue()
    event = deliver(
        make_endpoint, post_webhook, caplog, django_capture_on_commit_callbacks, "gh-sync", "s-1"
    )
    event.refresh_from_db()
    assert event.status == "unhandled" and event.attempts == 1  # ran: nothing is registered
    assert webhook_queue.pusher.flush(timeout=10)
    assert broker.queue_size() == 0
