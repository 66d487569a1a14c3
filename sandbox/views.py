"""The sandbox CRM's API, under ``/sandbox/crm/v1/``.

* ``GET  /contacts?email=&updated_since=&limit=&cursor=`` — search and list, ordered by
  (updated_at, id), with an opaque cursor (``next_cursor``; absent on the last page);
* ``POST /contacts`` — create (``email`` required), ``Idempotency-Key`` honoured;
* ``GET|PATCH /contacts/<id>`` — read, update (fields merged);
* ``GET /me`` — the health check.

Every request needs ``X-API-Key``. Faults (``SandboxState``): the next N requests 503, a share
of random 503s, added latency, and a rate limit answering 429 with ``Retry-After``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time
from datetime import datetime
from functools import wraps

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from sandbox.models import SandboxContact, SandboxIdempotencyKey, SandboxRequest, SandboxState

MAX_LIMIT = 500


def error(status: int, message: str, **headers) -> JsonResponse:
    response = JsonResponse({"message": message}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _rate_limited(state: SandboxState) -> bool:
    now = time.time()
    with transaction.atomic():
        state = SandboxState.objects.select_for_update().get(pk=state.pk)
        if now - state.window_started_at >= state.rate_window_seconds:
            state.window_started_at, state.window_count = now, 0
        state.window_count += 1
        state.save(update_fields=["window_started_at", "window_count"])
    return state.window_count > state.rate_limit


def crm_view(view):
    """API key, faults and the request log around a CRM view."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        state = SandboxState.get()
        body = None
        if request.body:
            try:
                body = json.loads(request.body)
            except ValueError:
                return error(400, "the body is not valid JSON")
        response = guarded(state, request, body, view, args, kwargs)
        if state.log_requests:
            SandboxRequest.objects.create(
                method=request.method,
                path=request.get_full_path()[:500],
                idempotency_key=request.headers.get("Idempotency-Key", "")[:300],
                body=body,
                status=response.status_code,
            )
        return response

    return wrapper


def guarded(state, request, body, view, args, kwargs):
    if state.latency_ms:
        time.sleep(state.latency_ms / 1000)
    given = request.headers.get("X-API-Key", "")
    if not state.api_key or not hmac.compare_digest(given.encode(), state.api_key.encode()):
        return error(401, "invalid API key")
    if state.rate_limit and _rate_limited(state):
        return error(429, "rate limit exceeded", Retry_After=str(state.retry_after_seconds))
    if state.fail_next and SandboxState.objects.filter(pk=state.pk, fail_next__gt=0).update(
        fail_next=F("fail_next") - 1
    ):
        return error(503, "service unavailable (sandbox fault)", Retry_After="1")
    if state.error_rate and random.random() < state.error_rate:  # noqa: S311 - a fault injector
        return error(503, "service unavailable (random sandbox fault)", Retry_After="1")
    return view(request, body, *args, **kwargs)


@crm_view
def me(request, body):
    return JsonResponse({"name": "Sandbox CRM", "ok": True})


def _encode_cursor(contact: SandboxContact) -> str:
    raw = f"{contact.updated_at.isoformat()}|{contact.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str):
    try:
        when, pk = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(when), int(pk)
    except (ValueError, UnicodeDecodeError):
        return None


@crm_view
def contacts(request, body):
    if request.method == "POST":
        return _create(request, body)
    if request.method != "GET":
        return error(405, "use GET or POST")
    rows = SandboxContact.objects.order_by("updated_at", "pk")
    email = request.GET.get("email")
    if email is not None:
        rows = rows.filter(email=email.strip().lower())
    since = request.GET.get("updated_since")
    if since:
        try:
            rows = rows.filter(updated_at__gte=datetime.fromisoformat(since))
        except ValueError:
            return error(400, "updated_since must be an ISO 8601 date-time")
    cursor = request.GET.get("cursor")
    if cursor:
        position = _decode_cursor(cursor)
        if position is None:
            return error(400, "malformed cursor")
        when, pk = position
        rows = rows.filter(Q(updated_at__gt=when) | Q(updated_at=when, pk__gt=pk))
    try:
        limit = min(int(request.GET.get("limit", 100)), MAX_LIMIT)
    except ValueError:
        return error(400, "limit must be a number")
    page = list(rows[: limit + 1])
    answer = {"results": [contact.as_json() for contact in page[:limit]]}
    if len(page) > limit:
        answer["next_cursor"] = _encode_cursor(page[limit - 1])
    return JsonResponse(answer)


def _validate(body, *, creating: bool):
    if not isinstance(body, dict):
        return "send a JSON object"
    if creating and not str(body.get("email") or "").strip():
        return "email is required"
    if "id" in body:
        return "id is set by the CRM"
    return None


def _create(request, body):
    problem = _validate(body, creating=True)
    if problem:
        return error(422, problem)
    return idempotent_create(
        request,
        body,
        lambda: SandboxContact.objects.create(email=str(body["email"]).lower(), data=body),
    )


def idempotent_create(request, body, make, scope: str = "") -> JsonResponse:
    """201 with what ``make()`` created; with an ``Idempotency-Key`` (kept per ``scope``), the
    same key and body answer the first answer again, another body 422, one in progress 409."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return JsonResponse(make().as_json(), status=201)
    key = f"{scope}:{key}"[:300] if scope else key
    fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    try:
        with transaction.atomic():
            record = SandboxIdempotencyKey.objects.create(key=key, fingerprint=fingerprint)
            created = make()
            record.status, record.body = 201, created.as_json()
            record.save(update_fields=["status", "body"])
        return JsonResponse(record.body, status=201)
    except IntegrityError:
        record = SandboxIdempotencyKey.objects.get(key=key)
    if record.fingerprint != fingerprint:
        return error(422, "this Idempotency-Key was used with another request")
    if not record.status:
        return error(409, "a request with this Idempotency-Key is in progress", Retry_After="1")
    response = JsonResponse(record.body, status=record.status)
    response["Idempotent-Replayed"] = "true"
    return response


def _contact_pk(contact_id: str):
    if not contact_id.startswith("c_") or not contact_id[2:].isdigit():
        return None
    return int(contact_id[2:])


@crm_view
def contact(request, body, contact_id: str):
    pk = _contact_pk(contact_id)
    found = SandboxContact.objects.filter(pk=pk).first() if pk else None
    if found is None:
        return error(404, f"no contact {contact_id}")
    if request.method == "GET":
        return JsonResponse(found.as_json())
    if request.method == "DELETE":  # a person's erasure, as the hub's GDPR desk requests it
        found.delete()
        return JsonResponse({"id": contact_id, "deleted": True})
    if request.method not in ("PATCH", "PUT"):
        return error(405, "use GET, PATCH, PUT or DELETE")
    problem = _validate(body, creating=False)
    if problem:
        return error(422, problem)
    data = body if request.method == "PUT" else {**found.data, **body}
    if data != found.data:  # an update that changes nothing changes nothing (updated_at too)
        found.data = data
        found.email = str(data.get("email") or "").lower()
        found.save()
    return JsonResponse(found.as_json())
