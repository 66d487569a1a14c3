"""The inbound request path: every refusal, its status and reason, and exactly one stored row."""

from __future__ import annotations

import io
import secrets as pysecrets
import threading

import pytest
from cryptography.fernet import Fernet
from django.db import connection as db_connection

from tests import signing
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db

BODY = signing.fixture("github", "push")


@pytest.fixture
def secret():
    return pysecrets.token_hex(20)


@pytest.fixture
def endpoint(make_endpoint, secret):
    return make_endpoint("github", secret, slug="gh")


def headers_for(secret, delivery="d-1", body=BODY):
    return signing.github_headers(body, secret, delivery)


def test_unknown_and_disabled_endpoints_get_the_same_404(client, endpoint, secret):
    unknown = client.post("/webhooks/nope/", data=BODY, content_type="application/json")
    endpoint.enabled = False
    endpoint.save()
    disabled = client.post(
        "/webhooks/gh/", data=BODY, content_type="application/json", headers=headers_for(secret)
    )
    assert unknown.status_code == disabled.status_code == 404
    assert unknown.json() == disabled.json() == {"detail": "unknown webhook endpoint"}


def test_only_post_is_allowed(client, endpoint):
    assert client.get("/webhooks/gh/").status_code == 405
    assert client.put("/webhooks/gh/", data=BODY).status_code == 405


def test_a_body_over_the_limit_is_refused_from_content_length(endpoint, post_webhook, secret):
    endpoint.max_body_bytes = 1024
    endpoint.save()
    big = b'{"pad": "' + b"x" * 2000 + b'"}'
    response = post_webhook(endpoint, big, headers_for(secret, body=big))
    assert response.status_code == 413 and "larger than 1024" in response.json()["detail"]
    assert not WebhookEvent.objects.exists()


class CountingStream(io.RawIOBase):
    """A de-chunked request body as a WSGI server hands it over (no Content-Length)."""

    def __init__(self, data: bytes):
        self.data, self.position = data, 0

    def read(self, size=-1):
        size = len(self.data) - self.position if size is None or size < 0 else size
        piece = self.data[self.position : self.position + size]
        self.position += len(piece)
        return piece


def chunked_request(body: bytes, headers: dict):
    from django.test import RequestFactory

    request = RequestFactory().post(
        "/webhooks/gh/", data=b"{}", content_type="application/json", headers=headers
    )
    request.META.pop("CONTENT_LENGTH", None)
    request.META["wsgi.input"] = CountingStream(body)
    request.META["wsgi.input_terminated"] = True  # what gunicorn says for chunked bodies
    return request


def test_a_chunked_body_is_read_and_its_read_is_capped(endpoint, secret):
    from webhooks.services.ingest import receive

    # a chunked delivery within the limit is read whole and verified
    ok = receive("gh", chunked_request(BODY, headers_for(secret, "chunked-1")))
    assert ok.status == 202
    # one over the limit is refused without reading it all
    endpoint.max_body_bytes = 1024
    endpoint.save()
    big = b'{"pad": "' + b"x" * 50_000 + b'"}'
    request = chunked_request(big, headers_for(secret, "chunked-2", body=big))
    refused = receive("gh", request)
    assert refused.status == 413
    assert request.META["wsgi.input"].position <= 1025
    assert WebhookEvent.objects.count() == 1


def test_an_address_outside_the_allowlist_is_refused(endpoint, post_webhook, secret, settings):
    endpoint.ip_allowlist = "192.30.252.0/22\n2001:db8::/32"
    endpoint.save()
    response = post_webhook(endpoint, BODY, headers_for(secret))
    assert response.status_code == 403
    # X-Forwarded-For counts only from a trusted proxy
    spoofed = post_webhook(
        endpoint, BODY, {**headers_for(secret), "X-Forwarded-For": "192.30.252.10"}
    )
    assert spoofed.status_code == 403
    settings.HUB_TRUSTED_PROXIES = ["127.0.0.1"]
    proxied = post_webhook(
        endpoint, BODY, {**headers_for(secret), "X-Forwarded-For": "192.30.252.10"}
    )
    assert proxied.status_code == 202
    assert WebhookEvent.objects.get().source_ip == "192.30.252.10"


def test_no_usable_secret_refuses_every_delivery_with_503(make_endpoint, post_webhook, settings):
    endpoint = make_endpoint("github", None, slug="nosecret")
    response = post_webhook(endpoint, BODY, headers_for("anything"))
    assert (
        response.status_code == 503
        and "no usable webhook signing secret" in response.json()["detail"]
    )
    # an unreadable one (its Fernet key is gone) is the same: never a 2xx
    secret = pysecrets.token_hex(20)
    other = make_endpoint("github", secret, slug="unreadable")
    settings.FERNET_KEYS = [Fernet.generate_key().decode()]
    response = post_webhook(other, BODY, headers_for(secret))
    assert response.status_code == 503 and "unreadable" in response.json()["detail"]
    assert not WebhookEvent.objects.exists()


def test_wrong_content_type_is_415(endpoint, post_webhook, secret):
    response = post_webhook(endpoint, BODY, headers_for(secret), content_type="text/plain")
    assert response.status_code == 415
    ok = post_webhook(
        endpoint, BODY, headers_for(secret, "d-2"), content_type="application/json; charset=utf-8"
    )
    assert ok.status_code == 202


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "*/*;q=0", "garbage;;"])
def test_any_accept_header_still_gets_a_json_answer(endpoint, post_webhook, secret, accept):
    # partners send what their HTTP client sends; a delivery is never refused for it (406)
    response = post_webhook(endpoint, BODY, {**headers_for(secret), "Accept": accept})
    assert response.status_code == 202, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["event"] == WebhookEvent.objects.get().pk


def test_signed_but_invalid_json_is_400_and_kept_as_rejected(endpoint, post_webhook, secret):
    body = b"{not json"
    response = post_webhook(endpoint, body, headers_for(secret, body=body))
    assert response.status_code == 400
    event = WebhookEvent.objects.get(pk=response.json()["event"])
    assert event.status == "rejected" and bytes(event.body) == body


def test_a_replayed_id_is_a_200_duplicate_and_nothing_more(endpoint, post_webhook, secret):
    first = post_webhook(endpoint, BODY, headers_for(secret, "d-7"))
    again = post_webhook(endpoint, BODY, headers_for(secret, "d-7"))
    assert first.status_code == 202
    assert again.status_code == 200 and again.json() == {
        "detail": "duplicate",
        "event": first.json()["event"],
    }
    assert WebhookEvent.objects.count() == 1


def test_stored_headers_have_secrets_redacted(endpoint, post_webhook, secret):
    token = "Bearer " + pysecrets.token_hex(16)
    response = post_webhook(
        endpoint, BODY, {**headers_for(secret), "Authorization": token, "X-Api-Key": "k-" + secret}
    )
    event = WebhookEvent.objects.get(pk=response.json()["event"])
    stored = str(event.headers)
    assert token not in stored and "k-" + secret not in stored
    assert event.headers["X-Github-Event"] == "push"


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_deliveries_store_one_row(make_endpoint, secret):
    # given eight deliveries of the same event at the same instant
    from django.test import Client

    endpoint = make_endpoint("github", secret, slug="gh-race")
    headers = headers_for(secret, "same-delivery")
    barrier = threading.Barrier(8)
    statuses: list[int] = []
    lock = threading.Lock()

    def deliver():
        client = Client()
        barrier.wait(timeout=10)
        try:
            response = client.post(
                f"/webhooks/{endpoint.slug}/",
                data=BODY,
                content_type="application/json",
                headers=headers,
            )
        finally:
            db_connection.close()
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then the unique constraint decided: one stored, the rest told "duplicate"
    assert sorted(statuses) == [200] * 7 + [202]
    assert WebhookEvent.objects.filter(endpoint=endpoint).count() == 1


def test_an_unsigned_endpoint_accepts_only_what_its_allowlist_lets_in(make_endpoint, post_webhook):
    endpoint = make_endpoint(
        "",
        None,
        slug="legacy",
        unsigned=True,
        ip_allowlist="127.0.0.0/8",
        event_id_source="json:id",
    )
    body = signing.fixture("stripe", "payment_intent.succeeded")
    assert post_webhook(endpoint, body, {}).status_code == 202
    assert WebhookEvent.objects.get().verified_by == "unsigned"


@pytest.mark.django_db(transaction=True)  # the pusher thread writes with its own connection
def test_the_queued_task_processes_the_event_and_a_duplicate_queues_nothing(
    endpoint, post_webhook, secret, django_capture_on_commit_callbacks
):
    from django.utils.module_loading import import_string
    from django_q.signing import SignedPackage

    from webhooks.services.queue import pusher, shared_broker

    broker = shared_broker()
    broker.purge_queue()
    with django_capture_on_commit_callbacks(execute=True):
        first = post_webhook(endpoint, BODY, headers_for(secret, "d-9"))
        again = post_webhook(endpoint, BODY, headers_for(secret, "d-9"))
    assert (first.status_code, again.status_code) == (202, 200)
    assert pusher.flush(timeout=10)  # the queue entry is written by this process's pusher
    assert broker.queue_size() == 1  # the duplicate queued nothing
    ((_, package),) = broker.dequeue()
    task = SignedPackage.loads(package)
    event = WebhookEvent.objects.get()
    assert (task["func"], task["args"]) == ("webhooks.tasks.process_event", (event.pk,))
    # nothing is registered for it: done, and said so
    assert import_string(task["func"])(*task["args"]) == "unhandled"
    event.refresh_from_db()
    assert event.status == "unhandled" and event.attempts == 1
