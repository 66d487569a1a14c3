"""``condition``: go on only when every comparison holds over the trigger's data and earlier
steps' results; otherwise stop the run, or skip the next steps.

    {"name": "paid", "kind": "condition",
     "when": [{"path": "steps.verify_payment.data.status", "op": "eq", "value": "succeeded"}],
     "otherwise": "stop"}

``otherwise``: "stop" (the default: the run ends, skipped, saying which comparison failed) or
"skip" (the next ``skip`` steps, 1 by default, then go on)."""

from __future__ import annotations

import json

from django.utils.translation import gettext, gettext_lazy

from flows.conditions import check_condition, evaluate
from flows.steps.base import StepContext, StepKind, StepOutcome, register, unknown_read


@register
class Condition(StepKind):
    name = "condition"
    label = gettext_lazy("Condition (go on, stop, or skip)")
    options = {"when": list, "otherwise": ("stop", "skip"), "skip": int}
    required = ("when",)
    mapping = "no"
    uses_connection = False
    example = '{"name": "paid", "kind": "condition", "when": [{"path": "steps.verify.data.status", "op": "eq", "value": "succeeded"}]}'  # noqa: E501

    def check(self, step: dict, earlier: list[str]) -> list[str]:
        problems = [f"when: {problem}" for problem in check_condition(step["when"])]
        if problems:
            return problems
        for index, comparison in enumerate(step["when"]):
            problem = unknown_read(str(comparison.get("path", "")), earlier, None)
            if problem:
                problems.append(f"when[{index}].path: {problem}")
        if "skip" in step and (step.get("otherwise") != "skip" or step["skip"] < 1):
            problems.append(
                gettext('skip: a number of steps (1 or more), with "otherwise": "skip"')
            )
        return problems

    def summary(self, step: dict) -> str:
        tests = " and ".join(
            f"{c.get('path')} {c.get('op', 'eq')} {json.dumps(c.get('value'))}"
            for c in step.get("when") or []
            if isinstance(c, dict)
        )
        if step.get("otherwise") == "skip":
            otherwise = gettext("else skip %(n)s") % {"n": step.get("skip", 1)}
        else:
            otherwise = gettext("else stop")
        return gettext("if %(tests)s; %(otherwise)s") % {"tests": tests, "otherwise": otherwise}

    def run(self, ctx: StepContext) -> StepOutcome:
        holds, why = evaluate(ctx.step["when"], ctx.data)
        result = {"held": holds, "why": why}
        if holds:
            return StepOutcome(result=result)
        if ctx.step.get("otherwise", "stop") == "skip":
            return StepOutcome(result=result, control="skip", skip=ctx.step.get("skip", 1), why=why)
        return StepOutcome(
            result=result,
            control="stop",
            why=gettext("condition %(step)s not met: %(why)s") % {"step": ctx.name, "why": why},
        )
