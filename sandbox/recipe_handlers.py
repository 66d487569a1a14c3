"""The site code the recipes call (a ``python`` step's handler): the support recipe's rules.

In a real site this module is the site's own, listed in ``HUB_HANDLER_MODULES``; the sandbox
registers it when it is installed, so that ``examples/recipes/support.yaml`` applies."""

from __future__ import annotations

from flows.steps.python import HANDLERS, step_handler

URGENT_WORDS = ("down", "outage", "cannot pay", "payment failed", "urgent", "hacked")


def support_priority(ctx) -> dict:
    """A priority and a queue from the request's subject and message: urgent for an outage or
    a payment problem, high for billing, normal otherwise."""
    text = f"{ctx.data.get('subject', '')} {ctx.data.get('message', '')}".lower()
    if any(word in text for word in URGENT_WORDS):
        return {"priority": "urgent", "queue": "on-call"}
    if any(word in text for word in ("invoice", "refund", "billing")):
        return {"priority": "high", "queue": "billing"}
    return {"priority": "normal", "queue": "support"}


if "support_priority" not in HANDLERS:
    step_handler("support_priority")(support_priority)
