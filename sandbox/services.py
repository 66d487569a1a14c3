"""The sandbox's other partners, under ``/sandbox/<service>/v1/``: a payment provider's REST
API, an emailing tool, a booking tool, an invoicing tool, a support desk and a chat. The brief's
recipes (``examples/recipes/``) run against them.

Each is a small JSON API over records (``SandboxRecord``), with what that kind of tool does:

* every service: ``GET /<collection>?field=value&limit=`` (exact match on the record's fields,
  newest first), ``POST /<collection>`` (201; ``Idempotency-Key`` honoured as the CRM does),
  ``GET|PATCH|PUT|DELETE /<collection>/<id>``;
* emailing: ``contacts``, ``emails`` (a sent email), ``members`` (a contact in a list);
  ``POST /contacts/<id>/confirm`` is the person clicking the double opt-in link: the contact is
  confirmed and the tool posts a signed ``contact.confirmed`` webhook;
* booking: ``slots``, ``bookings``; creating a booking posts ``booking.created``, and
  ``POST /bookings/<id>/cancel`` cancels it and posts ``booking.cancelled``;
* invoicing: ``invoices``, ``credit_notes``, ``customers``; ``GET /exports/accounting`` is the
  accounting export (one line per invoice and credit note, credit notes negative);
* payments: ``payments`` (what the provider's webhooks are about: ``GET /payments/<id>`` is the
  "REST to verify" of a payment event); support: ``tickets``; chat: ``messages``.

Each service has its own ``SandboxState`` row (``service``): its API key (``X-API-Key``), its
faults switched as the CRM's are (503s, random 503s, latency, a rate limit), and where its
webhooks go (``webhook_url``, signed with the Standard Webhooks library and ``webhook_secret``).
"""

from __future__ import annotations

import json
import logging
import secrets
from functools import wraps

from django.db import transaction
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from sandbox.models import SandboxRecord, SandboxRequest, SandboxState
from sandbox.views import error, guarded, idempotent_create

logger = logging.getLogger("sandbox")

# service → its collections and the prefix of their records' ids
SERVICES: dict[str, dict[str, str]] = {
    "payments": {"payments": "pay"},
    "emailing": {"contacts": "ct", "emails": "em", "members": "mb"},
    "booking": {"slots": "sl", "bookings": "bk"},
    "invoicing": {"invoices": "inv", "credit_notes": "cn", "customers": "cu"},
    "support": {"tickets": "tk"},
    "chat": {"messages": "msg"},
}
MAX_LIMIT = 500


def service_view(view):
    """The service's API key, faults and request log around a view."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request, service: str, *args, **kwargs):
        if service not in SERVICES:
            return error(404, f"no sandbox service {service}")
        state = SandboxState.get(service)
        body = None
        if request.body:
            try:
                body = json.loads(request.body)
            except ValueError:
                return error(400, "the body is not valid JSON")
        response = guarded(state, request, body, view, (service, *args), kwargs)
        if state.log_requests:
            SandboxRequest.objects.create(
                service=service,
                method=request.method,
                path=request.get_full_path()[:500],
                idempotency_key=request.headers.get("Idempotency-Key", "")[:300],
                body=body,
                status=response.status_code,
            )
        return response

    return wrapper


def _collection(service: str, collection: str) -> str | None:
    return SERVICES[service].get(collection)


@service_view
def records(request, body, service: str, collection: str):
    prefix = _collection(service, collection)
    if prefix is None:
        return error(404, f"{service} has no {collection}")
    if request.method == "POST":
        return _create(request, body, service, collection, prefix)
    if request.method != "GET":
        return error(405, "use GET or POST")
    rows = SandboxRecord.objects.filter(service=service, collection=collection)
    for name, value in request.GET.items():
        if name != "limit":
            rows = rows.filter(**{f"data__{name}": value})
    try:
        limit = min(int(request.GET.get("limit", 100)), MAX_LIMIT)
    except ValueError:
        return error(400, "limit must be a number")
    return JsonResponse({"results": [r.as_json() for r in rows.order_by("-pk")[:limit]]})


def _create(request, body, service, collection, prefix):
    if not isinstance(body, dict):
        return error(422, "send a JSON object")
    if "id" in body:
        return error(422, f"id is set by the {service} tool")

    def make() -> SandboxRecord:
        record = SandboxRecord.objects.create(
            service=service,
            collection=collection,
            ref=f"{prefix}_{secrets.token_hex(6)}",
            data=_created(service, collection, body),
        )
        _after_create(request, service, collection, record)
        return record

    return idempotent_create(request, body, make, scope=service)


def _created(service: str, collection: str, body: dict) -> dict:
    """What the tool adds to a new record (its status)."""
    defaults = {
        ("emailing", "contacts"): {"status": "pending"},
        ("booking", "bookings"): {"status": "confirmed"},
        ("invoicing", "invoices"): {"status": "issued"},
        ("support", "tickets"): {"status": "open"},
    }
    return {**defaults.get((service, collection), {}), **body}


def _after_create(request, service, collection, record) -> None:
    if (service, collection) == ("booking", "bookings"):
        transaction.on_commit(lambda: send_webhook("booking", "booking.created", record))


@service_view
def record(request, body, service: str, collection: str, ref: str):
    if _collection(service, collection) is None:
        return error(404, f"{service} has no {collection}")
    found = SandboxRecord.objects.filter(service=service, collection=collection, ref=ref).first()
    if found is None:
        return error(404, f"no {collection} {ref}")
    if request.method == "GET":
        return JsonResponse(found.as_json())
    if request.method == "DELETE":
        found.delete()
        return JsonResponse({"id": ref, "deleted": True})
    if request.method not in ("PATCH", "PUT"):
        return error(405, "use GET, PATCH, PUT or DELETE")
    if not isinstance(body, dict) or "id" in body:
        return error(422, "send a JSON object without id")
    data = body if request.method == "PUT" else {**found.data, **body}
    if data != found.data:
        found.data = data
        found.save()
    return JsonResponse(found.as_json())


# what a person does at the tool: confirm a subscription, cancel a booking
ACTIONS = {
    ("emailing", "contacts", "confirm"): ({"status": "confirmed"}, "contact.confirmed"),
    ("booking", "bookings", "cancel"): ({"status": "cancelled"}, "booking.cancelled"),
}


@service_view
def action(request, body, service: str, collection: str, ref: str, name: str):
    found = SandboxRecord.objects.filter(service=service, collection=collection, ref=ref).first()
    known = ACTIONS.get((service, collection, name))
    if found is None or known is None:
        return error(404, f"no {collection} {ref} to {name}")
    if request.method != "POST":
        return error(405, "use POST")
    changes, event_type = known
    found.data = {**found.data, **changes}
    found.save()
    transaction.on_commit(lambda: send_webhook(service, event_type, found))
    return JsonResponse(found.as_json())


@service_view
def accounting_export(request, body, service: str):
    if service != "invoicing" or request.method != "GET":
        return error(404, "the accounting export is GET /sandbox/invoicing/v1/exports/accounting")
    lines = []
    for row in SandboxRecord.objects.filter(
        service="invoicing", collection__in=("invoices", "credit_notes")
    ).order_by("pk"):
        amount = int(row.data.get("amount") or 0)
        lines.append(
            {
                "ref": row.ref,
                "kind": "invoice" if row.collection == "invoices" else "credit_note",
                "amount": amount if row.collection == "invoices" else -abs(amount),
                "currency": row.data.get("currency", "eur"),
                "customer": row.data.get("customer", ""),
                "date": row.created_at.date().isoformat(),
            }
        )
    return JsonResponse({"lines": lines, "total": sum(line["amount"] for line in lines)})


def send_webhook(service: str, event_type: str, record: SandboxRecord) -> int | None:
    """Post a signed event about ``record`` to the service's webhook URL (none set: nothing);
    the event's id is the delivery's ``webhook-id``. Returns the hub's status."""
    import requests

    from sandbox.emitter import signed_headers

    state = SandboxState.get(service)
    if not state.webhook_url or not state.webhook_secret:
        return None
    singular = record.collection.rstrip("s")
    event = {
        "id": "evt_" + secrets.token_hex(12),
        "type": event_type,
        "created": int(timezone.now().timestamp()),
        "data": {singular: record.as_json()},
    }
    raw = json.dumps(event, separators=(",", ":")).encode()
    try:
        answer = requests.post(
            state.webhook_url,
            data=raw,
            headers=signed_headers(raw, state.webhook_secret, event["id"]),
            timeout=10,
        )
    except requests.RequestException as exc:
        logger.warning("sandbox %s: the %s webhook was not delivered: %s", service, event_type, exc)
        return None
    return answer.status_code


def store_payment(event: dict) -> SandboxRecord:
    """The payment a payment event is about, as the provider's REST API answers it (what a
    workflow's "REST to verify" step reads)."""
    payment = event["data"]["object"]
    record, _created = SandboxRecord.objects.update_or_create(
        service="payments",
        collection="payments",
        ref=payment["id"],
        defaults={"data": {k: v for k, v in payment.items() if k != "id"}},
    )
    return record
