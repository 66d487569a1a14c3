"""``/metrics`` for Prometheus, protected by a bearer token or an address allowlist."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitoring.metrics import registry


def _allowed(request) -> bool:
    token = settings.HUB_METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and given.startswith("Bearer "):
        return hmac.compare_digest(given[len("Bearer ") :].strip().encode(), token.encode())
    return request.META.get("REMOTE_ADDR", "") in settings.HUB_METRICS_ALLOWED_IPS


def metrics(request):
    if request.method != "GET":
        return HttpResponse("GET only.\n", status=405, content_type="text/plain")
    if not _allowed(request):
        return HttpResponse(
            "Forbidden: send Authorization: Bearer <HUB_METRICS_TOKEN>, or scrape from an "
            "address in HUB_METRICS_ALLOWED_IPS.\n",
            status=403,
            content_type="text/plain",
        )
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
