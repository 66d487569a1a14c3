"""The public webhook endpoint: a thin DRF view over ``webhooks.services.ingest.receive``."""

from django.http import JsonResponse
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from webhooks.services.ingest import receive


class WebhookReceiver(APIView):
    """``POST /webhooks/<slug>/``: no session, no CSRF (the signature authenticates), and no
    parser: the raw body is read by the service, before anything parses it."""

    authentication_classes: list = []
    permission_classes: list = []
    parser_classes: list = []
    throttle_classes: list = []
    # Partner-facing, not part of the hub's API schema (docs/webhooks.md describes it).
    schema = None
    # Partners read JSON; no content negotiation with the browsable API on the hot path.
    renderer_classes = [JSONRenderer]
    http_method_names = ["post", "options"]

    def perform_content_negotiation(self, request, force=False):
        # Partners read JSON whatever their Accept header says: a delivery is never refused
        # with 406 for it (and the hot path skips negotiation).
        renderer = self.renderer_classes[0]()
        return renderer, renderer.media_type

    def perform_authentication(self, request):
        # No authenticators: the signature authenticates. Skipping DRF's eager
        # ``request.user`` (an anonymous user built per delivery) is DRF's documented way to
        # make authentication lazy.
        pass

    def post(self, request, slug: str):
        result = receive(slug, request._request)
        # A plain JSON response: DRF passes it through without content negotiation or
        # rendering, which this hot path does not need.
        return JsonResponse(result.body(), status=result.status)
