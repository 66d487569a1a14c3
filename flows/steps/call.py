"""``call``: any method on a connection. A write carries an idempotency key derived from the
trigger, the flow and the step, so a retried run never creates twice.

    {"name": "create_invoice", "kind": "call", "connection": "invoicing", "method": "POST",
     "path": "/invoices", "mapping": "payment-to-invoice"}

Later steps read ``steps.create_invoice.data`` (the partner's answer), ``.status`` and
``.record_id`` (its ``record_id_field``, "id" by default)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy

from connectors import hub
from flows.paths import MISSING, get_path
from flows.steps.base import StepContext, StepKind, StepOutcome, register

WRITES = ("POST", "PUT", "PATCH", "DELETE")


@register
class Call(StepKind):
    name = "call"
    label = gettext_lazy("Call (any method on a connection)")
    options = {
        "method": ("GET", "POST", "PUT", "PATCH", "DELETE"),
        "path": str,
        "record_id_field": str,
    }
    required = ("path",)
    default_method = "POST"
    templates = ("path",)
    example = '{"name": "tag", "kind": "call", "method": "POST", "path": "/contacts/{id}/tags"}'

    def run(self, ctx: StepContext) -> StepOutcome:
        step = ctx.step
        method = step.get("method", "POST")
        mapped = ctx.mapped()
        response = hub.call(
            ctx.connection(),
            method,
            ctx.fill(step["path"], mapped),
            json=mapped if method in ("POST", "PUT", "PATCH") else None,
            idempotency_key=ctx.key if method in WRITES else None,
        )
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        found = (
            get_path(body, step.get("record_id_field", "id")) if isinstance(body, dict) else None
        )
        record_id = "" if found in (MISSING, None) else str(found)
        return StepOutcome(
            result={"status": response.status, "data": body, "record_id": record_id},
            sent=mapped,
            outcome="called",
            record_id=record_id,
        )
