"""``python``: a handler of the site's own code, registered by name.

    from flows.steps.python import step_handler

    @step_handler("priority")
    def priority(ctx):              # ctx.data: the trigger's data, "steps": earlier results
        return {"priority": "urgent" if "down" in ctx.data["message"] else "normal"}

    {"name": "rules", "kind": "python", "handler": "priority"}

What it returns (a JSON object, or None) is ``steps.rules.data``. It raises ``PermanentError``
(or ``MappingError``) to fail the run, anything else to have it retried. Its module is listed
in ``HUB_HANDLER_MODULES``, as webhook handlers are."""

from __future__ import annotations

import json

from django.utils.translation import gettext, gettext_lazy

from connectors.engine.errors import PermanentError
from connectors.registry import Registry
from flows.steps.base import StepContext, StepKind, StepOutcome, register

__all__ = ["HANDLERS", "step_handler"]

HANDLERS: Registry = Registry("python step handler")


def step_handler(name: str):
    def decorate(func):
        HANDLERS.add(name, func)
        return func

    return decorate


@register
class Python(StepKind):
    name = "python"
    label = gettext_lazy("Python (a handler of the site's code)")
    options = {"handler": str}
    required = ("handler",)
    mapping = "no"
    uses_connection = False
    example = '{"name": "rules", "kind": "python", "handler": "priority"}'

    def check(self, step: dict, earlier: list[str]) -> list[str]:
        if step["handler"] not in HANDLERS:
            return [
                gettext('handler: unknown handler "%(name)s" (registered: %(known)s)')
                % {
                    "name": step["handler"],
                    "known": ", ".join(sorted(HANDLERS)) or gettext("none"),
                }
            ]
        return []

    def summary(self, step: dict) -> str:
        return gettext("handler %(name)s") % {"name": step.get("handler", "?")}

    def run(self, ctx: StepContext) -> StepOutcome:
        answer = HANDLERS.lookup(ctx.step["handler"])(ctx)
        if answer is not None and not isinstance(answer, dict):
            raise PermanentError(
                gettext("the handler %(name)s returned %(type)s, not an object or None")
                % {"name": ctx.step["handler"], "type": type(answer).__name__}
            )
        try:
            json.dumps(answer)
        except (TypeError, ValueError):
            raise PermanentError(
                gettext("the handler %(name)s returned something that is not JSON")
                % {"name": ctx.step["handler"]}
            ) from None
        return StepOutcome(result={"data": answer})
