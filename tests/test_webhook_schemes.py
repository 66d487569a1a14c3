"""Each verification scheme, with deliveries signed by the partners' own libraries where they
exist and the partners' documented examples, plus every kind of bad signature."""

from __future__ import annotations

import base64
import json
import secrets as pysecrets
import time

import pytest
from requests.structures import CaseInsensitiveDict

from tests import signing
from webhooks.models import WebhookEvent
from webhooks.schemes import Delivery, SignatureRejected, get_scheme
from webhooks.services import refusals

pytestmark = pytest.mark.django_db

SIX_MINUTES = 360


def whsec() -> str:
    return "whsec_" + base64.b64encode(pysecrets.token_bytes(24)).decode()


def stripe_secret() -> str:
    return "whsec_" + pysecrets.token_hex(16)


# -- documented examples ------------------------------------------------------------------------


def test_githubs_documented_example_verifies():
    # https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing
    delivery = Delivery(
        CaseInsensitiveDict(
            {
                "X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a"
                "37570b6d7586c22c46f4379c8b043e17"
            }
        ),
        b"Hello, World!",
        time.time(),
    )
    verified = get_scheme("github").verify(
        delivery, [("It's a Secret to Everybody", "fp")], tolerance=300, options={}
    )
    assert verified.fingerprint == "fp"


def test_slacks_documented_example_verifies():
    # https://api.slack.com/authentication/verifying-requests-from-slack (walk-through values)
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
        b"G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhoo"
        b"k-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F39"
        b"7700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a"
        b"14d10d2c447fce8b6703c"
    )
    headers = CaseInsensitiveDict(
        {
            "X-Slack-Request-Timestamp": "1531420618",
            "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235"
            "a7b4a8d21a10bd27519666489c69b503",
        }
    )
    scheme = get_scheme("slack")
    # the example is from 2018: judged at its own time, it verifies …
    verified = scheme.verify(
        Delivery(headers, body, 1531420618 + 10),
        [("8f742231b10e8888abcd99yyyzzz85a5", "fp")],
        tolerance=300,
        options={},
    )
    assert verified.fingerprint == "fp"
    # … and today it is a replay
    with pytest.raises(SignatureRejected, match="timestamp outside tolerance"):
        scheme.verify(
            Delivery(headers, body, time.time()),
            [("8f742231b10e8888abcd99yyyzzz85a5", "fp")],
            tolerance=300,
            options={},
        )


# -- every scheme, over HTTP ---------------------------------------------------------------------


def signed(scheme: str, secret: str, body: bytes, *, timestamp=None, delivery_id="d-1"):
    if scheme == "stripe":
        return signing.stripe_headers(body, secret, timestamp)
    if scheme == "standard_webhooks":
        return signing.standard_headers(body, secret, delivery_id, timestamp)
    if scheme == "github":
        return signing.github_headers(body, secret, delivery_id)
    if scheme == "shopify":
        return signing.shopify_headers(body, secret, delivery_id)
    if scheme == "slack":
        return signing.slack_headers(body, secret, timestamp)
    raise AssertionError(scheme)


SCHEMES = {
    "stripe": (
        stripe_secret,
        ("stripe", "payment_intent.succeeded"),
        "payment_intent.succeeded",
        "evt_3QxHubTest0001",
    ),
    "standard_webhooks": (whsec, ("standard_webhooks", "invoice.paid"), "invoice.paid", "d-1"),
    "github": (lambda: pysecrets.token_hex(20), ("github", "push"), "push", "d-1"),
    "shopify": (
        lambda: pysecrets.token_hex(16),
        ("shopify", "orders_create"),
        "orders/create",
        "d-1",
    ),
    "slack": (
        lambda: pysecrets.token_hex(16),
        ("slack", "event_callback"),
        "app_mention",
        "Ev0PV52K21",
    ),
}
TIMESTAMPED = ["stripe", "standard_webhooks", "slack"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_correctly_signed_delivery_is_stored_and_accepted(scheme, make_endpoint, post_webhook):
    make_secret, fixture, event_type, event_id = SCHEMES[scheme]
    secret = make_secret()
    endpoint = make_endpoint(scheme, secret)
    body = signing.fixture(*fixture)
    response = post_webhook(endpoint, body, signed(scheme, secret, body))
    assert response.status_code == 202, response.content
    event = WebhookEvent.objects.get(pk=response.json()["event"])
    assert bytes(event.body) == body  # byte for byte
    assert (event.event_type, event.event_id) == (event_type, event_id)
    assert (
        event.verified_by and event.verified_by in endpoint.connection.credentials.get().fingerprint
    )


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_body_changed_by_one_byte_is_refused(scheme, make_endpoint, post_webhook):
    make_secret, fixture, *_ = SCHEMES[scheme]
    secret = make_secret()
    endpoint = make_endpoint(scheme, secret)
    body = signing.fixture(*fixture)
    headers = signed(scheme, secret, body)
    tampered = body.replace(b"e", b"f", 1)
    response = post_webhook(endpoint, tampered, headers)
    assert response.status_code == 401 and response.json()["detail"] == "signature mismatch"
    assert not WebhookEvent.objects.exists()
    refusals.counter.flush()
    endpoint.refresh_from_db()
    assert endpoint.rejected_count == 1 and endpoint.last_rejection_reason == "signature mismatch"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_wrong_key_is_refused(scheme, make_endpoint, post_webhook):
    make_secret, fixture, *_ = SCHEMES[scheme]
    endpoint = make_endpoint(scheme, make_secret())
    body = signing.fixture(*fixture)
    response = post_webhook(endpoint, body, signed(scheme, make_secret(), body))
    assert response.status_code == 401
    assert response.json()["detail"] == "signature mismatch"


@pytest.mark.parametrize("scheme", TIMESTAMPED)
@pytest.mark.parametrize("offset", [-SIX_MINUTES, SIX_MINUTES])
def test_timestamps_six_minutes_off_either_way_are_refused(
    scheme, offset, make_endpoint, post_webhook
):
    make_secret, fixture, *_ = SCHEMES[scheme]
    secret = make_secret()
    endpoint = make_endpoint(scheme, secret)
    body = signing.fixture(*fixture)
    headers = signed(scheme, secret, body, timestamp=int(time.time()) + offset)
    response = post_webhook(endpoint, body, headers)
    assert response.status_code == 401
    assert response.json()["detail"] == "timestamp outside tolerance"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_missing_and_malformed_signature_headers_are_401_never_500(
    scheme, make_endpoint, post_webhook
):
    make_secret, fixture, *_ = SCHEMES[scheme]
    secret = make_secret()
    endpoint = make_endpoint(scheme, secret)
    body = signing.fixture(*fixture)
    good = signed(scheme, secret, body)
    assert post_webhook(endpoint, body, {}).status_code == 401
    for garbage in [
        "",
        "=",
        "t=",
        "v1",
        "sha256=",
        "v0=zz",
        "t=abc,v1=def",
        ",,,",
        "v1,%%%",
        "é" * 10,
        "x" * 5000,
    ]:
        headers = {
            name: garbage
            for name in good
            if "sig" in name.lower() or "hmac" in name.lower() or "timestamp" in name.lower()
        }
        headers = {**good, **headers}
        response = post_webhook(endpoint, body, headers)
        assert response.status_code == 401, (garbage, response.content)
        assert response.json()["detail"]


def test_stripe_accepts_any_of_several_v1_signatures(make_endpoint, post_webhook):
    secret = stripe_secret()
    endpoint = make_endpoint("stripe", secret)
    body = signing.fixture("stripe", "payment_intent.succeeded")
    good = signing.stripe_headers(body, secret)["Stripe-Signature"]
    t, v1 = good.split(",")
    header = f"{t},v1={'0' * 64},{v1},v0={'1' * 64}"
    response = post_webhook(endpoint, body, {"Stripe-Signature": header})
    assert response.status_code == 202


def test_stripe_secret_without_its_whsec_prefix_does_not_verify(make_endpoint, post_webhook):
    # Stripe's HMAC key is the whole string, prefix included (the stripe library does the same)
    secret = stripe_secret()
    endpoint = make_endpoint("stripe", secret.removeprefix("whsec_"))
    body = signing.fixture("stripe", "payment_intent.succeeded")
    response = post_webhook(endpoint, body, signing.stripe_headers(body, secret))
    assert response.status_code == 401


def test_standard_webhooks_accepts_svix_headers_several_signatures_and_a_bare_key(
    make_endpoint, post_webhook
):
    secret = whsec()
    # the admin pasted the key without its whsec_ prefix: the key is the base64 part either way
    endpoint = make_endpoint("standard_webhooks", secret.removeprefix("whsec_"))
    body = signing.fixture("standard_webhooks", "invoice.paid")
    svix = signing.standard_headers(body, secret, "msg_svix_1", svix=True)
    assert post_webhook(endpoint, body, svix).status_code == 202
    headers = signing.standard_headers(body, secret, "msg_2")
    headers["webhook-signature"] = "v1,AAAA " + headers["webhook-signature"] + " v2,BBBB"
    assert post_webhook(endpoint, body, headers).status_code == 202
    assert WebhookEvent.objects.filter(event_id__in=["msg_svix_1", "msg_2"]).count() == 2


def test_two_secrets_during_a_rotation_are_both_accepted(make_endpoint, post_webhook):
    from datetime import timedelta

    from django.utils import timezone

    from connectors.services.credentials import rotate_credential

    old, new = pysecrets.token_hex(20), pysecrets.token_hex(20)
    endpoint = make_endpoint("github", old)
    credential = endpoint.connection.credentials.get()
    rotate_credential(credential, new, overlap_until=timezone.now() + timedelta(hours=1))
    body = signing.fixture("github", "push")
    first = post_webhook(endpoint, body, signing.github_headers(body, old, "d-old"))
    second = post_webhook(endpoint, body, signing.github_headers(body, new, "d-new"))
    assert (first.status_code, second.status_code) == (202, 202)
    fingerprints = dict(WebhookEvent.objects.values_list("event_id", "verified_by"))
    assert fingerprints["d-old"] != fingerprints["d-new"]


@pytest.mark.parametrize(
    ("options", "make_header"),
    [
        (
            {"header": "X-Sig", "algorithm": "sha512", "encoding": "hex", "prefix": "sha512="},
            lambda s, b, t: {
                "X-Sig": "sha512=" + __import__("hmac").new(s.encode(), b, "sha512").hexdigest()
            },
        ),
        (
            {
                "header": "X-Sig",
                "encoding": "base64",
                "signed": "timestamp.body",
                "timestamp_header": "X-Ts",
            },
            lambda s, b, t: {
                "X-Ts": str(t),
                "X-Sig": base64.b64encode(
                    __import__("hmac").new(s.encode(), f"{t}.".encode() + b, "sha256").digest()
                ).decode(),
            },
        ),
    ],
)
def test_generic_hmac_variants(options, make_header, make_endpoint, post_webhook):
    secret = pysecrets.token_hex(16)
    endpoint = make_endpoint("hmac", secret, scheme_options=options, event_id_source="json:id")
    body = signing.fixture("stripe", "payment_intent.succeeded")
    now = int(time.time())
    assert post_webhook(endpoint, body, make_header(secret, body, now)).status_code == 202
    stale = make_header(secret, body, now - SIX_MINUTES)
    expected = 401
    second = post_webhook(endpoint, body.replace(b"4990", b"4991"), stale)
    assert second.status_code == expected


def test_slacks_url_verification_is_answered_and_not_stored(make_endpoint, post_webhook):
    secret = pysecrets.token_hex(16)
    endpoint = make_endpoint("slack", secret)
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"  # Slack's docs example
    body = json.dumps(
        {"token": "unused", "challenge": challenge, "type": "url_verification"}
    ).encode()
    response = post_webhook(endpoint, body, signing.slack_headers(body, secret))
    assert response.status_code == 200
    assert response.json()["challenge"] == challenge
    assert not WebhookEvent.objects.exists()
    # an unsigned one gets nothing back
    refused = post_webhook(endpoint, body, {})
    assert refused.status_code == 401 and "challenge" not in refused.json()
