"""Shopify: ``X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256(secret, body)>``.

https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook. No
signed timestamp: replays are refused by the event id, stored unique. Shopify's guidance is to
deduplicate on ``X-Shopify-Event-Id`` (the same for every delivery of one event, across
subscriptions); ``X-Shopify-Webhook-Id`` (one per delivery attempt series) is the fallback for
deliveries without it.
"""

import base64
import hashlib
import hmac

from webhooks.schemes import Scheme, SignatureRejected, register


@register
class Shopify(Scheme):
    key = "shopify"
    event_id_source = "header:X-Shopify-Event-Id"
    event_type_source = "header:X-Shopify-Topic"
    signature_headers = ("X-Shopify-Hmac-Sha256",)

    def event_id_from(self, headers) -> str:
        return headers.get("X-Shopify-Webhook-Id", "")

    def verify(self, delivery, secrets, *, tolerance, options):
        header = delivery.header("X-Shopify-Hmac-Sha256")
        if not header:
            raise SignatureRejected("missing X-Shopify-Hmac-Sha256 header")
        return self.first_match(
            [header.encode()],
            secrets,
            lambda secret: base64.b64encode(
                hmac.new(secret.encode(), delivery.body, hashlib.sha256).digest()
            ),
        )
