"""Standard Webhooks (and Svix, its origin): ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature: v1,<base64>[ v1,<base64>…]`` over ``"<id>.<timestamp>.<body>"``.

https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md.
Secrets are ``whsec_<base64 key>``; the HMAC key is the decoded bytes. Svix sends the same
headers prefixed ``svix-`` instead of ``webhook-``; both are accepted.
"""

import base64
import binascii
import hashlib
import hmac

from webhooks.schemes import Scheme, SignatureRejected, register


def _key(secret: str) -> bytes:
    raw = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        # a secret that is not base64 is used as is (some senders do that)
        return raw.encode()


@register
class StandardWebhooks(Scheme):
    key = "standard_webhooks"
    event_id_source = "header:webhook-id"
    event_type_source = "json:type"
    signature_headers = ("webhook-signature", "svix-signature")

    def _headers(self, delivery):
        for prefix in ("webhook-", "svix-"):
            msg_id = delivery.header(prefix + "id")
            if msg_id:
                return (
                    msg_id,
                    delivery.header(prefix + "timestamp"),
                    delivery.header(prefix + "signature"),
                )
        raise SignatureRejected("missing webhook-id header")

    def verify(self, delivery, secrets, *, tolerance, options):
        msg_id, timestamp, header = self._headers(delivery)
        if not header:
            raise SignatureRejected("missing webhook-signature header")
        if not timestamp:
            raise SignatureRejected("missing webhook-timestamp header")
        self.check_timestamp(timestamp, delivery.now, tolerance)
        candidates = []
        for item in header.split():
            version, sep, value = item.partition(",")
            if sep and version == "v1" and value:
                candidates.append(value.encode())
        if not candidates:
            raise SignatureRejected("malformed webhook-signature header (needs v1,<base64>)")
        signed = f"{msg_id}.{timestamp}.".encode() + delivery.body
        return self.first_match(
            candidates,
            secrets,
            lambda secret: base64.b64encode(
                hmac.new(_key(secret), signed, hashlib.sha256).digest()
            ),
        )

    def event_id_from(self, headers) -> str:
        return (headers.get("webhook-id") or headers.get("svix-id") or "").strip()
