"""Refused deliveries (signature, timestamp, IP, size) above a threshold: the partner rotated
its secret, or someone is probing the endpoint."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from monitoring.choices import Severity
from monitoring.rules import Rule, register


@register
class SignatureFailures(Rule):
    key = "signature_failures"
    title = _("Signature failures")
    defaults = {"min_count": 10, "window_minutes": 15}

    def evaluate(self, ctx):
        found = []
        for endpoint in ctx.endpoints:
            params = ctx.params(self, endpoint_id=endpoint.pk)
            if params is None:
                continue
            totals = ctx.event_totals(params["window_minutes"]).get(endpoint.pk)
            if not totals or totals.refused < params["min_count"]:
                continue
            reason = endpoint.last_rejection_reason or _("see the endpoint")
            found.append(
                self.endpoint_signal(
                    endpoint,
                    severity=Severity.WARNING,
                    summary=_(
                        "%(n)s deliveries to endpoint %(endpoint)s were refused in %(minutes)s "
                        "min (last: %(reason)s)"
                    )
                    % {
                        "n": totals.refused,
                        "endpoint": endpoint.slug,
                        "minutes": params["window_minutes"],
                        "reason": reason,
                    },
                    advice=_(
                        "If the partner rotated its signing secret, add the new one to the "
                        "endpoint (both stay valid during the rotation). If the refusals come "
                        "from unknown senders, someone is probing: set the endpoint's IP "
                        "allowlist."
                    ),
                    details={"refused": totals.refused},
                )
            )
        return found
