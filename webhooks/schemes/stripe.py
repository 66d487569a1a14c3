"""Stripe: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`` over ``"<t>.<body>"``.

https://docs.stripe.com/webhooks#verify-manually. Several ``v1`` values appear while Stripe
rolls a secret; any one matching is enough. ``v0`` (test) signatures are ignored.
"""

import hashlib
import hmac

from webhooks.schemes import Scheme, SignatureRejected, register


@register
class Stripe(Scheme):
    key = "stripe"
    event_id_source = "json:id"
    event_type_source = "json:type"
    signature_headers = ("Stripe-Signature",)

    def verify(self, delivery, secrets, *, tolerance, options):
        header = delivery.header("Stripe-Signature")
        if not header:
            raise SignatureRejected("missing Stripe-Signature header")
        timestamp, signatures = "", []
        for item in header.split(","):
            name, sep, value = item.strip().partition("=")
            if not sep:
                raise SignatureRejected("malformed Stripe-Signature header")
            if name == "t":
                timestamp = value
            elif name == "v1" and value:
                signatures.append(value.lower().encode())
        if not timestamp or not signatures:
            raise SignatureRejected("malformed Stripe-Signature header (needs t= and v1=)")
        self.check_timestamp(timestamp, delivery.now, tolerance)
        signed = timestamp.encode() + b"." + delivery.body
        return self.first_match(
            signatures,
            secrets,
            lambda secret: hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest().encode(),
        )
