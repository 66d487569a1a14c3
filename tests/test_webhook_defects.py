"""Defects found by fuzzing and independent checks of the receiver: each test failed before its
fix (a 500 anyone could trigger, a write per refusal, an id ignored, a method answered)."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests import signing
from webhooks.models import WebhookEvent
from webhooks.services import refusals

pytestmark = pytest.mark.django_db

HUGE = "1" + "0" * 400  # passes int(), then overflows a float comparison
SECRET = "whsec_" + "s" * 32


def overflowing(scheme: str) -> dict:
    return {
        "stripe": {"Stripe-Signature": f"t={HUGE},v1=00"},
        "slack": {"X-Slack-Signature": "v0=00", "X-Slack-Request-Timestamp": HUGE},
        "standard_webhooks": {
            "webhook-id": "msg_1",
            "webhook-timestamp": HUGE,
            "webhook-signature": "v1,AAAA",
        },
    }[scheme]


@pytest.mark.parametrize("scheme", ["stripe", "slack", "standard_webhooks"])
def test_a_309_digit_timestamp_is_outside_tolerance_not_a_500(scheme, make_endpoint, post_webhook):
    secret = SECRET if scheme != "standard_webhooks" else "whsec_" + "c2VjcmV0" * 4
    endpoint = make_endpoint(scheme, secret)
    response = post_webhook(endpoint, b'{"id": "x"}', overflowing(scheme))
    assert response.status_code == 401
    assert response.json() == {"detail": "timestamp outside tolerance"}
    refusals.counter.flush()
    endpoint.refresh_from_db()
    assert endpoint.rejected_count == 1  # counted like any refusal


def test_a_generic_timestamp_header_that_overflows_is_refused(make_endpoint, post_webhook):
    endpoint = make_endpoint(
        "hmac",
        SECRET,
        scheme_options={
            "header": "X-Sig",
            "signed": "timestamp.body",
            "timestamp_header": "X-Ts",
        },
    )
    response = post_webhook(endpoint, b"{}", {"X-Sig": "00", "X-Ts": HUGE})
    assert response.status_code == 401
    assert response.json()["detail"] == "timestamp outside tolerance"


@pytest.mark.parametrize("spelling", ["{a}_{b}", "+{a}{b}", "-{a}{b}", "{a}{b}.0"])
def test_a_signed_timestamp_is_digits_only(spelling, make_endpoint, post_webhook):
    # given a delivery correctly signed over a timestamp int() would accept
    now = str(int(time.time()))
    stamp = spelling.format(a=now[:4], b=now[4:])
    body = b'{"type": "event_callback"}'
    digest = hmac.new(SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256)
    headers = {"X-Slack-Signature": f"v0={digest.hexdigest()}", "X-Slack-Request-Timestamp": stamp}
    response = post_webhook(make_endpoint("slack", SECRET), body, headers)
    assert response.status_code == 401
    assert response.json()["detail"] == "malformed timestamp"


def test_a_signed_body_nested_1000_deep_is_kept_as_rejected_with_a_400(make_endpoint, post_webhook):
    endpoint = make_endpoint("github", SECRET)
    body = b"[" * 1000 + b"]" * 1000
    response = post_webhook(endpoint, body, signing.github_headers(body, SECRET, "deep-1"))
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]
    event = WebhookEvent.objects.get()
    assert (event.status, event.event_id, bytes(event.body)) == ("rejected", "deep-1", body)


def test_an_invalid_body_redelivered_with_the_partners_id_is_a_duplicate_of_it(
    make_endpoint, post_webhook
):
    endpoint = make_endpoint("github", SECRET)
    body = b"not json at all"
    first = post_webhook(endpoint, body, signing.github_headers(body, SECRET, "bad-1"))
    again = post_webhook(endpoint, body, signing.github_headers(body, SECRET, "bad-1"))
    other = post_webhook(endpoint, body, signing.github_headers(body, SECRET, "bad-2"))
    # the same delivery twice: the partner's own id decides, as for valid bodies
    assert first.status_code == 400
    assert again.status_code == 200 and again.json()["detail"] == "duplicate"
    # a different delivery of the same bytes is not taken for the first one
    assert other.status_code == 400
    assert sorted(WebhookEvent.objects.values_list("event_id", flat=True)) == ["bad-1", "bad-2"]


def test_shopify_deliveries_are_deduplicated_on_the_event_id(make_endpoint, post_webhook):
    endpoint = make_endpoint("shopify", SECRET)
    body = b'{"id": 820982911946154508}'
    headers = signing.shopify_headers(body, SECRET, webhook_id="w-1")
    first = post_webhook(endpoint, body, {**headers, "X-Shopify-Event-Id": "ev-1"})
    # the same event sent again under another webhook id (a second subscription, a resend)
    second = post_webhook(
        endpoint, body, {**headers, "X-Shopify-Webhook-Id": "w-2", "X-Shopify-Event-Id": "ev-1"}
    )
    # an older delivery without the event id falls back to the webhook id
    legacy = post_webhook(endpoint, body, signing.shopify_headers(body, SECRET, webhook_id="w-3"))
    assert (first.status_code, second.status_code, legacy.status_code) == (202, 200, 202)
    assert sorted(WebhookEvent.objects.values_list("event_id", flat=True)) == ["ev-1", "w-3"]


@pytest.mark.parametrize("method", ["options", "get", "put", "delete", "patch", "head"])
def test_every_method_but_post_is_405_and_unknown_endpoints_404(method, make_endpoint, client):
    make_endpoint("github", SECRET, slug="known")
    known = getattr(client, method)("/webhooks/known/")
    unknown = getattr(client, method)("/webhooks/nobody-here/")
    assert known.status_code == 405 and known["Allow"] == "POST"
    assert unknown.status_code == 404
    for response in (known, unknown):
        text = response.content.decode()
        assert "renders" not in text and "parses" not in text  # no DRF metadata
        assert "receive" not in text.lower()  # nor the view's name or docstring


def test_a_flood_of_bad_signatures_writes_the_endpoint_row_once(
    make_endpoint, post_webhook, operator_client
):
    endpoint = make_endpoint("github", SECRET)
    body = b'{"x": 1}'
    bad = signing.github_headers(body, "not-the-secret", "flood")
    with CaptureQueriesContext(connection) as queries:
        answers = {post_webhook(endpoint, body, bad).status_code for _ in range(30)}
    assert answers == {401}
    # the write count is the point: no statement touched the endpoint row per refusal
    assert not [q for q in queries.captured_queries if q["sql"].upper().startswith("UPDATE")]
    assert refusals.counter.pending(endpoint.pk) == 30
    with CaptureQueriesContext(connection) as queries:
        refusals.counter.flush()
    # one UPDATE of the endpoint row and one of its count by kind (the first time, the kind's
    # row is created), and the last refusals in one INSERT and one trim, whatever their number
    writes = [q["sql"].split()[0] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert writes == ["UPDATE", "UPDATE", "INSERT", "INSERT", "SELECT", "DELETE"]
    endpoint.refresh_from_db()
    assert (endpoint.rejected_count, endpoint.last_rejection_reason) == (30, "signature mismatch")
    assert endpoint.last_rejection_at is not None
    for _ in range(30):
        post_webhook(endpoint, body, bad)
    with CaptureQueriesContext(connection) as queries:
        refusals.counter.flush()
    writes = [q["sql"].split()[0] for q in queries.captured_queries]
    assert writes == ["UPDATE", "UPDATE", "INSERT", "SELECT", "DELETE"]
    assert endpoint.refusals.get(kind="signature").count == 60
    # the last 20 refusals are kept, with when, why and from where; never what was sent
    recent = list(endpoint.refused.all())
    assert len(recent) == 20
    assert {(r.kind, r.reason, r.source_ip) for r in recent} == {
        ("signature", "signature mismatch", "127.0.0.1")
    }
    # and the endpoint's page shows them to an operator
    page = operator_client.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/")
    html = page.content.decode()
    assert html.count("<td>signature mismatch</td>") == 20 and "<td>127.0.0.1</td>" in html
    assert bad["X-Hub-Signature-256"] not in html


@pytest.mark.django_db(transaction=True)
def test_refusal_counts_reach_the_row_by_themselves(make_endpoint, post_webhook, settings):
    from tests.processes import wait_for

    settings.HUB_WEBHOOK_REFUSAL_FLUSH_SECONDS = 0.2
    endpoint = make_endpoint("github", SECRET)
    body = b"{}"
    for _ in range(3):
        post_webhook(endpoint, body, signing.github_headers(body, "wrong", "t"))
    wait_for(
        lambda: type(endpoint).objects.get(pk=endpoint.pk).rejected_count == 3,
        10,
        "the timer to write the refusals",
    )


def test_a_refused_sender_is_refused_before_its_body_is_read(make_endpoint, client):
    endpoint = make_endpoint("github", SECRET, ip_allowlist="192.30.252.0/22")
    # a body announced larger than the endpoint accepts: reading it would answer 413
    response = client.post(
        f"/webhooks/{endpoint.slug}/",
        data=b"{}",
        content_type="application/json",
        CONTENT_LENGTH=str(endpoint.max_body_bytes + 1),
    )
    assert response.status_code == 403
    assert response.json()["detail"] == "sender address not allowed"


def test_loopback_ipv6_is_loopback_not_reserved(settings):
    from connectors.engine.ssrf import address_block_reason

    assert address_block_reason("::1", allow_private=True) is None
    assert "loopback" in address_block_reason("::1", allow_private=False)
    assert "reserved" in address_block_reason("::", allow_private=True)


def test_a_production_connection_on_http_is_refused_at_call_time(api_connection, partner):
    from connectors import hub
    from connectors.models import ApiCall, Connection

    # a row changed behind the console's back (an SQL update skips the save-time check)
    Connection.objects.filter(pk=api_connection.pk).update(environment="production")
    with pytest.raises(hub.HubError, match="not https: the call was not sent"):
        hub.call("partner", "GET", "/me")
    assert partner.requests == []
    assert not ApiCall.objects.exists()  # nothing was attempted
