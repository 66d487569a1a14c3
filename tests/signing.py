"""Signing deliveries the way each partner does, with the partners' own libraries where they
exist (stripe, standardwebhooks, svix) and the documented algorithm elsewhere."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(service: str, event: str) -> bytes:
    """A partner payload as bytes, exactly as stored in tests/fixtures/<service>/<event>.json."""
    return (FIXTURES / service / f"{event}.json").read_bytes()


def stripe_headers(body: bytes, secret: str, timestamp: int | None = None) -> dict:
    import stripe

    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{body.decode()}", secret)
    return {"Stripe-Signature": f"t={timestamp},v1={signature}"}


def standard_headers(
    body: bytes, secret: str, msg_id: str, timestamp: int | None = None, *, svix: bool = False
) -> dict:
    when = datetime.fromtimestamp(int(time.time()) if timestamp is None else timestamp, UTC)
    if svix:
        from svix.webhooks import Webhook

        signature = Webhook(secret).sign(msg_id, when, body.decode())
        prefix = "svix-"
    else:
        from standardwebhooks import Webhook

        signature = Webhook(secret).sign(msg_id, when, body.decode())
        prefix = "webhook-"
    return {
        f"{prefix}id": msg_id,
        f"{prefix}timestamp": str(int(when.timestamp())),
        f"{prefix}signature": signature,
    }


def github_headers(body: bytes, secret: str, delivery: str, event: str = "push") -> dict:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Event": event,
    }


def shopify_headers(
    body: bytes, secret: str, webhook_id: str, topic: str = "orders/create"
) -> dict:
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {
        "X-Shopify-Hmac-Sha256": digest,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Topic": topic,
    }


def slack_headers(body: bytes, secret: str, timestamp: int | None = None) -> dict:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"v0:{timestamp}:".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return {"X-Slack-Signature": f"v0={digest}", "X-Slack-Request-Timestamp": str(timestamp)}


def with_id(service: str, event: str, new_id: str) -> bytes:
    """The fixture with its id field changed (a second, distinct event)."""
    data = json.loads(fixture(service, event))
    data["id" if "id" in data else "event_id"] = new_id
    return json.dumps(data).encode()
