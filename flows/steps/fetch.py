"""``fetch``: read from a connection (GET, or a search POST), the "REST to verify" step.

    {"name": "verify_payment", "kind": "fetch", "connection": "payments",
     "path": "/payments/{trigger.data.object.id}", "results": "payment"}

Later steps read ``steps.verify_payment.data`` (the answer, or its ``results`` part) and
``steps.verify_payment.status``. A 404 fails the run unless ``not_found`` says "stop" or
"go_on" (``data`` is then null). A POST sends the step's mapping as its body (a search)."""

from __future__ import annotations

from django.utils.translation import gettext, gettext_lazy

from connectors import hub
from connectors.engine.errors import PermanentError
from flows.paths import MISSING, get_path
from flows.steps.base import StepContext, StepKind, StepOutcome, register


@register
class Fetch(StepKind):
    name = "fetch"
    label = gettext_lazy("Fetch (read from a connection)")
    options = {
        "method": ("GET", "POST"),
        "path": str,
        "results": str,
        "not_found": ("fail", "stop", "go_on"),
    }
    required = ("path",)
    templates = ("path",)
    example = '{"name": "verify", "kind": "fetch", "path": "/payments/{trigger.data.object.id}"}'

    def run(self, ctx: StepContext) -> StepOutcome:
        step = ctx.step
        method = step.get("method", "GET")
        mapped = ctx.mapped()
        path = ctx.fill(step["path"], mapped)
        try:
            response = hub.call(
                ctx.connection(), method, path, json=mapped if method == "POST" else None
            )
        except PermanentError as exc:
            if exc.status != 404 or step.get("not_found", "fail") == "fail":
                raise
            result = {"status": 404, "data": None}
            if step["not_found"] == "stop":
                return StepOutcome(
                    result=result,
                    control="stop",
                    why=gettext("%(path)s was not found") % {"path": step["path"]},
                )
            return StepOutcome(result=result)
        try:
            body = response.json() if response.content else None
        except ValueError:
            raise PermanentError(
                gettext("the fetch %(path)s answered something that is not JSON")
                % {"path": step["path"]},
                status=response.status,
                correlation_id=response.correlation_id,
            ) from None
        data = body
        if step.get("results"):
            data = get_path(body, step["results"])
            data = None if data is MISSING else data
        return StepOutcome(result={"status": response.status, "data": data}, sent=mapped)
