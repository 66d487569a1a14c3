"""``delay``: wait until a time computed from the data, or for a duration. The run is left
``waiting`` with the time it resumes; no worker sleeps. The sweeper's pass queues it again
when its time has come, so a restart neither loses nor repeats it.

    {"name": "day_before", "kind": "delay", "until": "{data.slot.start} - 24h"}
    {"name": "grace", "kind": "delay", "for": "7d"}

``until`` is an ISO 8601 date-time (or a Unix time) from the data, with an optional ``+`` or
``-`` and a duration (``30s``, ``10m``, ``24h``, ``7d``, ``1h30m``); a time without a zone is in
the hub's. When the time has already passed, the run goes on at once, or stops with
``"if_past": "stop"`` (a reminder for a slot that has started is not sent)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from flows.mapping import MappingError
from flows.steps.base import StepContext, StepKind, StepOutcome, register

DURATION = re.compile(r"^(?:\d+[smhdw])+$")
PART = re.compile(r"(\d+)([smhdw])")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
OFFSET = re.compile(r"^(?P<when>.+?)\s+(?P<sign>[+-])\s*(?P<duration>(?:\d+[smhdw])+)$")


def duration(text: str) -> timedelta:
    text = (text or "").strip()
    if not DURATION.match(text):
        raise ValueError(text)
    total = timedelta()
    for amount, unit in PART.findall(text):
        total += timedelta(**{UNITS[unit]: int(amount)})
    return total


def moment(text: str) -> datetime:
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return datetime.fromtimestamp(float(text), tz=UTC)
    value = datetime.fromisoformat(text)
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_default_timezone())
    return value


@register
class Delay(StepKind):
    name = "delay"
    label = gettext_lazy("Delay (wait, without a worker)")
    options = {"until": str, "for": str, "if_past": ("go_on", "stop")}
    mapping = "no"
    uses_connection = False
    templates = ("until",)
    example = '{"name": "day_before", "kind": "delay", "until": "{data.slot.start} - 24h"}'

    def check(self, step: dict, earlier: list[str]) -> list[str]:
        if ("until" in step) == ("for" in step):
            return [gettext('until: give "until" (a time from the data) or "for" (a duration)')]
        if "for" in step:
            try:
                duration(step["for"])
            except ValueError:
                return [
                    gettext('for: "%(value)s" is not a duration (30s, 10m, 24h, 7d, 1h30m)')
                    % {"value": step["for"]}
                ]
        else:
            found = OFFSET.match(step["until"].strip())
            if found is None and "{" not in step["until"]:
                try:
                    moment(step["until"])
                except ValueError:
                    return [
                        gettext('until: "%(value)s" is neither a time nor "{path} - 24h"')
                        % {"value": step["until"]}
                    ]
        return []

    def summary(self, step: dict) -> str:
        if "for" in step:
            return gettext("wait %(duration)s") % {"duration": step["for"]}
        return gettext("wait until %(time)s") % {"time": step.get("until", "?")}

    def resume_at(self, ctx: StepContext) -> datetime:
        step = ctx.step
        if "for" in step:
            return ctx.first_started_at + duration(step["for"])
        text = ctx.fill(step["until"])
        # the filled value is URL-encoded by fill(); a time holds ":" and "+"
        from urllib.parse import unquote

        text = unquote(text)
        found = OFFSET.match(text.strip())
        try:
            if found is None:
                return moment(text)
            offset = duration(found["duration"])
            base = moment(found["when"])
            return base - offset if found["sign"] == "-" else base + offset
        except ValueError:
            raise MappingError(
                [
                    gettext('step %(step)s: "%(value)s" is not a time')
                    % {"step": ctx.name, "value": text}
                ]
            ) from None

    def run(self, ctx: StepContext) -> StepOutcome:
        until = self.resume_at(ctx)
        result = {"until": until.isoformat()}
        if until > timezone.now():
            return StepOutcome(result=result, control="wait", resume_at=until)
        if ctx.step.get("if_past") == "stop":
            return StepOutcome(
                result={**result, "past": True},
                control="stop",
                why=gettext("delay %(step)s: its time had passed") % {"step": ctx.name},
            )
        return StepOutcome(result={**result, "past": True})
