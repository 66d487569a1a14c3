"""The ``Idempotency-Key`` header of the hub's own API, on POST.

Same key and same body: the first answer is replayed (with ``Idempotent-Replayed: true``).
Same key, another body: 422. Same key while the first request still runs: 409. An answer that
says "try again" (5xx) is not kept, so the retry runs again — with the same key, hence the same
outbound idempotency keys: still no duplicate at the partner.
"""

from __future__ import annotations

import hashlib
import json

from rest_framework.response import Response

from connectors.engine import idempotency
from connectors.engine.errors import IdempotencyConflictError, IdempotencyMismatchError

HEADER = "Idempotency-Key"
MAX_KEY = 255
LEASE_SECONDS = 120


def _fingerprint(request) -> str:
    body = json.dumps(request.data, sort_keys=True, default=str).encode()
    return hashlib.sha256(
        request.method.encode() + b"\0" + request.path.encode() + b"\0" + body
    ).hexdigest()


def idempotent(view_method):
    """Decorate a DRF view's ``post``: honour the header when present."""

    def wrapper(self, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return view_method(self, request, *args, **kwargs)
        key = key.strip()
        if not key or len(key) > MAX_KEY or not key.isprintable():
            return Response(
                {"detail": f"{HEADER} must be 1 to {MAX_KEY} printable characters."}, status=400
            )
        scope = f"api:{request.auth.pk}"
        try:
            record, stored = idempotency.begin(
                scope,
                key,
                _fingerprint(request),
                lease_seconds=LEASE_SECONDS,
                correlation_id=request.headers.get("X-Request-ID", "")[:100],
            )
        except IdempotencyMismatchError:
            return Response(
                {
                    "detail": f"This {HEADER} was already used with a different request body. "
                    "Use a new key for a new request."
                },
                status=422,
            )
        except IdempotencyConflictError:
            return Response(
                {"detail": f"A request with this {HEADER} is still running; retry shortly."},
                status=409,
                headers={"Retry-After": "2"},
            )
        if stored is not None:
            response = Response(
                json.loads(bytes(stored.response_body or b"null")), status=stored.response_status
            )
            response["Idempotent-Replayed"] = "true"
            return response
        request.idempotency_key = key
        try:
            response = view_method(self, request, *args, **kwargs)
        except BaseException:
            idempotency.fail(record)
            raise
        if response.status_code >= 500:
            idempotency.fail(record)
        else:
            body = json.dumps(response.data, default=str).encode()
            idempotency.complete(record, response.status_code, {}, body)
        return response

    wrapper.__name__ = view_method.__name__
    wrapper.__doc__ = view_method.__doc__
    return wrapper
