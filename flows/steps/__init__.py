"""The kinds of step a workflow is made of, one small class each, in one registry.

A flow's ``steps`` is an ordered list of objects: ``{"name": "verify_payment", "kind":
"fetch", "path": "/payments/{trigger.data.object.id}"}``. Each kind declares its options (their
shape, checked on save with messages that name the step and the option) and how it runs. The
runner (``flows.services.workflow``) writes each step's row as it starts and ends, so a step
that succeeded is never executed again.

Importing this package registers the built-in kinds; a site adds Python steps with
``flows.steps.python.step_handler``.
"""

from flows.steps import call, condition, delay, fetch, python, upsert  # noqa: F401
from flows.steps.base import STEP_KINDS, StepContext, StepKind, StepOutcome, check_steps

__all__ = ["STEP_KINDS", "StepContext", "StepKind", "StepOutcome", "check_steps"]
