"""GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>``.

https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries. GitHub signs
no timestamp: replays are refused by the delivery id (``X-GitHub-Delivery``), stored unique.
"""

import hashlib
import hmac

from webhooks.schemes import Scheme, SignatureRejected, register


@register
class GitHub(Scheme):
    key = "github"
    event_id_source = "header:X-GitHub-Delivery"
    event_type_source = "header:X-GitHub-Event"
    signature_headers = ("X-Hub-Signature-256",)

    def verify(self, delivery, secrets, *, tolerance, options):
        header = delivery.header("X-Hub-Signature-256")
        if not header:
            raise SignatureRejected("missing X-Hub-Signature-256 header")
        algorithm, _, signature = header.partition("=")
        if algorithm != "sha256" or not signature:
            raise SignatureRejected("malformed X-Hub-Signature-256 header")
        return self.first_match(
            [signature.lower().encode()],
            secrets,
            lambda secret: (
                hmac.new(secret.encode(), delivery.body, hashlib.sha256).hexdigest().encode()
            ),
        )
