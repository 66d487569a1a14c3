"""The brief's use cases as recipes that run (``examples/recipes/*.yaml``): how each is set up
against the sandbox partners, and the scenario that plays its partners' and its people's part
(a payment notified five times, a booking made then another cancelled, a signup confirmed…).

``make demo RECIPE=booking`` and the end-to-end tests (``tests/test_recipes.py``) use the same
two functions: :func:`prepare` (the sandbox services' keys, faults off, where their webhooks go;
the recipe's document with its secrets' values) and the recipe's scenario.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import requests
from django.conf import settings
from django.utils import timezone

from sandbox.emitter import emit, new_signing_secret, payment_event

__all__ = ["RECIPES", "Recipe", "Sandbox", "prepare"]

RECIPES_DIR = Path(settings.BASE_DIR) / "examples" / "recipes"
LOCAL = "http://127.0.0.1:8000"


@dataclass
class Sandbox:
    """Where the hub and the sandbox answer, and the sandbox services' keys and secrets."""

    base_url: str
    values: dict[str, str]

    def key(self, service: str) -> str:
        return self.values[f"SANDBOX_{service.upper()}_API_KEY"]

    def secret(self, service: str) -> str:
        return self.values[f"SANDBOX_{service.upper()}_WEBHOOK_SECRET"]

    def call(self, service: str, method: str, path: str, body=None) -> dict:
        """A request to a sandbox service, as its users (the site, the person) make them."""
        answer = requests.request(
            method,
            f"{self.base_url}/sandbox/{service}/v1{path}",
            json=body,
            headers={"X-API-Key": self.key(service)},
            timeout=30,
        )
        answer.raise_for_status()
        return answer.json()

    def run_flow(
        self, slug: str, payload: dict, token: str, key: str, *, wait: bool = True
    ) -> requests.Response:
        """The site runs a flow through the REST API (a form submission); with ``wait``
        False it does not wait for the run, which the hub's workers carry."""
        return requests.post(
            f"{self.base_url}/api/flows/{slug}/run/",
            data=json.dumps({"payload": payload, "wait": wait}),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Idempotency-Key": key,
            },
            timeout=30,
        )


def service_of(connection: dict) -> str:
    return connection["base_url"].split("/sandbox/", 1)[1].split("/", 1)[0]


def prepare(name: str, base_url: str = LOCAL) -> tuple[dict, Sandbox]:
    """The recipe's document pointed at ``base_url``, and each of its sandbox services ready:
    a fresh API key, faults off, its webhooks signed with a fresh secret and posted to the
    recipe's endpoint for it. The values go in the environment before the document is applied
    (its secrets are ``${SANDBOX_<SERVICE>_…}`` references)."""
    from flows import iac
    from sandbox.models import SandboxState

    document = iac.load(RECIPES[name].path.read_text().replace(LOCAL, base_url))
    values: dict[str, str] = {}
    for connection in document["connections"]:
        service = service_of(connection)
        key = secrets.token_urlsafe(24)
        values[f"SANDBOX_{service.upper()}_API_KEY"] = key
        webhook_url, webhook_secret = "", ""
        if "webhook_signing_secret" in (connection.get("secrets") or {}):
            webhook_secret = new_signing_secret()
            values[f"SANDBOX_{service.upper()}_WEBHOOK_SECRET"] = webhook_secret
            endpoint = next(
                e for e in document.get("endpoints", []) if e["connection"] == connection["slug"]
            )
            webhook_url = f"{base_url}/webhooks/{endpoint['slug']}/"
        SandboxState.objects.update_or_create(
            service=service,
            defaults={
                "api_key": key,
                "webhook_url": webhook_url,
                "webhook_secret": webhook_secret,
                "fail_next": 0,
                "error_rate": 0.0,
                "latency_ms": 0,
                "rate_limit": 0,
                "log_requests": True,
            },
        )
    return document, Sandbox(base_url, values)


# -- the scenarios ------------------------------------------------------------------------


def payment_scenario(sandbox: Sandbox, *, email: str = "ada@example.test", times: int = 5):
    """A payment succeeds; the provider notifies it ``times`` times (as providers retry)."""
    from sandbox.services import store_payment

    event = payment_event(email=email, name="ada lovelace")
    store_payment(event)
    url = f"{sandbox.base_url}/webhooks/payments/"
    return event, [emit(url, sandbox.secret("payments"), event).status_code for _ in range(times)]


def refund_scenario(sandbox: Sandbox, *, email: str = "ada@example.test", times: int = 2):
    """A payment is refunded; the provider notifies it ``times`` times."""
    from sandbox.services import store_payment

    event = payment_event(email=email, name="ada lovelace", event_type="payment.refunded")
    event["data"]["object"].update(
        status="refunded", amount_refunded=event["data"]["object"]["amount"]
    )
    store_payment(event)
    url = f"{sandbox.base_url}/webhooks/payments/"
    return event, [emit(url, sandbox.secret("payments"), event).status_code for _ in range(times)]


def booking_scenario(sandbox: Sandbox, *, ahead: timedelta = timedelta(hours=24, seconds=8)):
    """Two bookings whose slots start ``ahead`` from now (the reminder is due 24 h before);
    the second is cancelled at once."""
    start = (timezone.now() + ahead).replace(microsecond=0).isoformat()
    kept = sandbox.call(
        "booking", "POST", "/bookings", {"email": "ada@example.test", "slot_start": start}
    )
    cancelled = sandbox.call(
        "booking", "POST", "/bookings", {"email": "bob@example.test", "slot_start": start}
    )
    sandbox.call("booking", "POST", f"/bookings/{cancelled['id']}/cancel")
    return kept, cancelled


def signup_scenario(sandbox: Sandbox, token: str) -> list[requests.Response]:
    """Two people sign up on the site; the first confirms from the email."""
    answers = [
        sandbox.run_flow("signup", {"email": email, "first_name": name}, token, f"signup-{n}")
        for n, (email, name) in enumerate(
            [("ada@example.test", "ada"), ("bob@example.test", "bob")]
        )
    ]
    [contact] = sandbox.call("emailing", "GET", "/contacts?email=ada@example.test")["results"]
    sandbox.call("emailing", "POST", f"/contacts/{contact['id']}/confirm")
    return answers


def support_scenario(sandbox: Sandbox, token: str, *, wait: bool = True) -> list[requests.Response]:
    """Two requests from the site's contact form: an outage, and a question (``wait``: see
    :meth:`Sandbox.run_flow`)."""
    requests_sent = [
        {"email": "ada@example.test", "subject": "The site is down", "message": "Error 502."},
        {"email": "bob@example.test", "subject": "Opening hours", "message": "Open Sunday?"},
    ]
    return [
        sandbox.run_flow("support-request", body, token, f"support-{n}", wait=wait)
        for n, body in enumerate(requests_sent)
    ]


@dataclass(frozen=True)
class Recipe:
    name: str
    file: str
    summary: str

    @property
    def path(self) -> Path:
        return RECIPES_DIR / self.file


RECIPES = {
    r.name: r
    for r in [
        Recipe("payment", "payment.yaml", "payment → verify → CRM contact, tagged → invoice"),
        Recipe("booking", "booking.yaml", "booking → confirmation → reminder 24 h before"),
        Recipe("double-opt-in", "double-opt-in.yaml", "signup → confirmation → subscribed"),
        Recipe("support", "support.yaml", "contact form → ticket with a priority → chat"),
        Recipe("refund", "refund.yaml", "refund → credit note → CRM contact updated"),
    ]
}
