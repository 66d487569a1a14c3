"""Generic HMAC, for partners with their own variant. Options (``scheme_options``):

``header`` (required), ``algorithm`` (``sha256`` or ``sha512``), ``encoding`` (``hex`` or
``base64``), ``prefix`` (e.g. ``sha256=``, stripped before comparing), ``signed`` (``body``, or
``timestamp.body`` with ``timestamp_header``: the signed bytes are ``<timestamp>.<body>``).
"""

import base64
import hashlib
import hmac as hmaclib

from django.utils.translation import gettext

from connectors.shapes import check_object, sentence
from webhooks.schemes import Scheme, SignatureRejected, register

ALGORITHMS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


OPTIONS = {
    "header": str,
    "algorithm": tuple(ALGORITHMS),
    "encoding": ("hex", "base64"),
    "prefix": str,
    "signed": ("body", "timestamp.body"),
    "timestamp_header": str,
}
EXAMPLE = '{"header": "X-Signature", "algorithm": "sha256", "encoding": "hex"}'


def check_options(options: dict) -> None:
    """Raise ``ValueError`` naming every bad option (an unknown key, a wrong value)."""
    problems = check_object(options, OPTIONS, example=EXAMPLE)
    if isinstance(options, dict):
        if not options.get("header"):
            problems.insert(0, gettext('"header" is missing: the name of the signature header'))
        if options.get("signed") == "timestamp.body" and not options.get("timestamp_header"):
            problems.append(gettext('"signed": "timestamp.body" needs "timestamp_header"'))
    if problems:
        raise ValueError(sentence(problems))


@register
class GenericHmac(Scheme):
    key = "hmac"
    event_id_source = "body-hash"
    event_type_source = "json:type"

    def verify(self, delivery, secrets, *, tolerance, options):
        header_name = options.get("header", "")
        header = delivery.header(header_name)
        if not header:
            raise SignatureRejected(f"missing {header_name} header")
        prefix = options.get("prefix", "")
        if prefix:
            if not header.startswith(prefix):
                raise SignatureRejected(f"malformed {header_name} header")
            header = header[len(prefix) :]
        digest = ALGORITHMS[options.get("algorithm", "sha256")]
        signed = delivery.body
        if options.get("signed", "body") == "timestamp.body":
            raw = delivery.header(options["timestamp_header"])
            if not raw:
                raise SignatureRejected(f"missing {options['timestamp_header']} header")
            self.check_timestamp(raw, delivery.now, tolerance)
            signed = raw.encode() + b"." + delivery.body
        hex_encoded = options.get("encoding", "hex") == "hex"

        def compute(secret):
            mac = hmaclib.new(secret.encode(), signed, digest)
            return mac.hexdigest().encode() if hex_encoded else base64.b64encode(mac.digest())

        candidate = header.lower().encode() if hex_encoded else header.encode()
        return self.first_match([candidate], secrets, compute)
