"""The sandbox payment provider: builds payment events and posts them to a hub endpoint,
signed with the Standard Webhooks reference library (``standardwebhooks``)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from datetime import UTC, datetime

import requests
from standardwebhooks import Webhook

__all__ = ["emit", "new_signing_secret", "payment_event", "signed_headers"]


def new_signing_secret() -> str:
    """A fresh ``whsec_`` secret, as Standard Webhooks senders issue them."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def payment_event(
    *,
    email: str,
    name: str = "Ada Lovelace",
    phone: str = "06 12 34 56 78",
    amount: int = 4200,
    currency: str = "eur",
    event_type: str = "payment.succeeded",
    event_id: str | None = None,
) -> dict:
    """A payment event. It carries more than a CRM needs (card, address, metadata): only what
    the hub's mapping names may leave the hub."""
    payment_id = "pay_" + secrets.token_hex(8)
    first, _, last = name.partition(" ")
    return {
        "id": event_id or "evt_" + secrets.token_hex(12),
        "type": event_type,
        "created": int(time.time()),
        "data": {
            "object": {
                "id": payment_id,
                "amount": amount,
                "currency": currency,
                "status": "succeeded" if event_type == "payment.succeeded" else "failed",
                "customer": {
                    "email": email,
                    "first_name": first,
                    "last_name": last,
                    "phone": phone,
                    "address": {"line1": "1 rue de la Paix", "city": "Paris", "country": "FR"},
                },
                "card": {"brand": "visa", "last4": "4242", "exp": "12/30"},
                "metadata": {"order": "ord_" + secrets.token_hex(4)},
            }
        },
    }


def signed_headers(body: bytes, secret: str, msg_id: str, timestamp: int | None = None) -> dict:
    when = datetime.fromtimestamp(timestamp if timestamp is not None else time.time(), UTC)
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, when, body.decode()),
    }


def emit(url: str, secret: str, event: dict, *, timeout: float = 10.0) -> requests.Response:
    """POST the event to a hub endpoint URL; the event's id is the delivery's webhook-id, so a
    second emit of the same event is a duplicate delivery."""
    body = json.dumps(event, separators=(",", ":")).encode()
    return requests.post(
        url, data=body, headers=signed_headers(body, secret, event["id"]), timeout=timeout
    )
