"""Slack: ``X-Slack-Signature: v0=<hex HMAC-SHA256(secret, "v0:<ts>:<body>")>`` with
``X-Slack-Request-Timestamp``.

https://api.slack.com/authentication/verifying-requests-from-slack
"""

import hashlib
import hmac

from webhooks.schemes import Scheme, SignatureRejected, register


@register
class Slack(Scheme):
    key = "slack"
    event_id_source = "json:event_id"
    event_type_source = "json:event.type"
    signature_headers = ("X-Slack-Signature",)

    def verify(self, delivery, secrets, *, tolerance, options):
        header = delivery.header("X-Slack-Signature")
        timestamp = delivery.header("X-Slack-Request-Timestamp")
        if not header:
            raise SignatureRejected("missing X-Slack-Signature header")
        if not timestamp:
            raise SignatureRejected("missing X-Slack-Request-Timestamp header")
        version, _, signature = header.partition("=")
        if version != "v0" or not signature:
            raise SignatureRejected("malformed X-Slack-Signature header")
        self.check_timestamp(timestamp, delivery.now, tolerance)
        signed = f"v0:{timestamp}:".encode() + delivery.body
        return self.first_match(
            [signature.lower().encode()],
            secrets,
            lambda secret: hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest().encode(),
        )

    def handshake(self, payload):
        # Events API URL check: a signed {"type": "url_verification", "challenge": "…"} that
        # must be echoed back (https://api.slack.com/events/url_verification).
        if isinstance(payload, dict) and payload.get("type") == "url_verification":
            return {"challenge": str(payload.get("challenge", ""))[:1000]}
        return None
