"""The public webhook endpoint: a thin Django view over ``webhooks.services.ingest.receive``.

A plain view, not a DRF one: partners are not API clients (no authentication classes, no
content negotiation, no browsable API, no metadata for OPTIONS), the raw body must be read by
the service before anything parses it, and every answer is a small JSON object.
"""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from webhooks.services.ingest import endpoint_config, receive


@csrf_exempt  # the signature authenticates; partners have no CSRF token
def receive_webhook(request, slug: str):
    """``POST /webhooks/<slug>/``; any other method is 405 (404 for an unknown endpoint), and
    says nothing about the code behind it."""
    if request.method != "POST":
        if endpoint_config(slug) is None:
            return JsonResponse({"detail": "unknown webhook endpoint"}, status=404)
        response = JsonResponse(
            {"detail": f"method {request.method} not allowed: deliveries are POSTed"},
            status=405,
        )
        response["Allow"] = "POST"
        return response
    result = receive(slug, request)
    return JsonResponse(result.body(), status=result.status)
