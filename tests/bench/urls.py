"""The hub's URLs plus the two ceilings the signed endpoint is measured against."""

import uuid

from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from integrations_site.urls import urlpatterns as hub_urlpatterns
from webhooks.models import WebhookEvent


@csrf_exempt
def bare(request):
    """The framework's ceiling: read the body, answer."""
    request.body  # noqa: B018 - read it, as any endpoint must
    return HttpResponse(b'{"detail":"ok"}', status=200, content_type="application/json")


@csrf_exempt
def durable_ack(request, endpoint_id: int):
    """The ceiling of any endpoint that persists before answering: one INSERT of a row the
    size of an event, then 202."""
    body = request.body
    # the delivery's own id, as the endpoint uses it: both write the same keys to the
    # unique index (random and sequential keys do not cost the same there)
    delivery = request.headers.get("X-GitHub-Delivery") or uuid.uuid4().hex
    # one ORM INSERT, as the endpoint's
    event = WebhookEvent.objects.create(
        endpoint_id=endpoint_id,
        event_id="ceiling-" + delivery,
        body=body,
        headers=dict(request.headers),
        correlation_id=uuid.uuid4().hex,
    )
    return JsonResponse({"detail": "accepted", "event": event.pk}, status=202)


urlpatterns = [
    path("bench/bare/", bare),
    path("bench/durable/<int:endpoint_id>/", durable_ack),
    *hub_urlpatterns,
]
