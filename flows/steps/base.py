"""What every step kind shares: its options' shape, the checks of a flow's steps, the context
a step runs in (the trigger's data and every earlier step's result) and what it answers."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils.translation import gettext, gettext_lazy

from connectors.registry import Registry
from connectors.shapes import check_object
from flows.paths import MISSING, get_path

__all__ = ["STEP_KINDS", "StepContext", "StepKind", "StepOutcome", "check_steps", "register"]

NAME = re.compile(r"^[a-z][a-z0-9_]{0,79}$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
# what every step may say, whatever its kind
COMMON = {"name": str, "kind": str, "description": str, "connection": str, "mapping": str}
# the heads a placeholder or a path may read besides a step's mapped fields
CONTEXT_HEADS = ("trigger", "steps")


@dataclass
class StepOutcome:
    """What a step did. ``result`` is what later steps read as ``steps.<name>``; ``sent`` the
    mapped data it sent. ``control``: "go_on", "stop" (the run ends, the next steps skipped),
    "skip" (the next ``skip`` steps are skipped) or "wait" (until ``resume_at``)."""

    result: dict = field(default_factory=dict)
    sent: Any = None
    control: str = "go_on"
    skip: int = 0
    resume_at: datetime | None = None
    why: str = ""
    outcome: str = ""
    record_id: str = ""


@dataclass
class StepContext:
    """Where a step runs: its definition, the data it may read, and its run."""

    flow: Any
    run: Any
    step: dict
    position: int
    data: dict  # the trigger's data at the top, "trigger" (the same), "steps" (earlier results)
    key: str  # the idempotency key of this step's creates: flow, trigger and step
    first_started_at: datetime
    connections: dict = field(default_factory=dict)
    sent: Any = None  # the mapped data, once mapped: kept on the step's row even if it fails

    @property
    def name(self) -> str:
        return self.step["name"]

    def connection(self):
        from connectors.engine import config_cache
        from connectors.models import Connection

        slug = self.step.get("connection")
        if not slug:
            return self.flow.connection
        config_cache.current_generation(max_age=0.5)
        return config_cache.cached_value(
            "flows.step_connection", slug, lambda: Connection.objects.get(slug=slug)
        )

    def mapped(self):
        """The step's mapping applied to the data (None without a mapping); a required field
        that is missing raises ``MappingError``."""
        slug = self.step.get("mapping")
        if not slug:
            return None
        from flows.mapping import map_or_raise
        from flows.services.runner import mapping_specs

        self.sent = map_or_raise(mapping_specs(mapping_pk(slug)), self.data).output
        return self.sent

    def fill(self, template: str, mapped=None, extra: dict | None = None) -> str:
        """A path template: each ``{name}`` from ``extra``, the mapped data, or the context
        (``trigger.…``, ``steps.…`` and the trigger's own fields), URL-encoded."""
        from urllib.parse import quote

        from flows.mapping import MappingError

        def value(match: re.Match) -> str:
            name = match.group(1)
            found = (extra or {}).get(name, MISSING)
            if found is MISSING and isinstance(mapped, dict):
                found = get_path(mapped, name)
            if found is MISSING:
                found = get_path(self.data, name)
            if found is MISSING or found is None or isinstance(found, (dict, list)):
                raise MappingError(
                    [
                        gettext('step %(step)s: "%(template)s": "%(field)s" has no value')
                        % {"step": self.name, "template": template, "field": name}
                    ]
                )
            return quote(str(found), safe="")

        return PLACEHOLDER.sub(value, template)


def mapping_pk(slug: str) -> int:
    from connectors.engine import config_cache
    from flows.models import Mapping

    config_cache.current_generation(max_age=0.5)
    return config_cache.cached_value(
        "flows.mapping_pk", slug, lambda: Mapping.objects.get(slug=slug).pk
    )


class StepKind(ABC):
    """A kind of step. ``options`` are its own keys (a type, or a tuple of allowed values);
    ``required`` those it cannot do without; ``mapping`` says whether it needs one ("yes"),
    may have one ("may") or takes none ("no")."""

    name = ""
    label = ""
    options: dict = {}
    required: tuple[str, ...] = ()
    mapping = "may"
    uses_connection = True
    templates: tuple[str, ...] = ()  # options holding {placeholders}
    example = ""
    default_method = "GET"

    def check(self, step: dict, earlier: list[str]) -> list[str]:
        """Problems particular to the kind, each "option: message"."""
        return []

    def summary(self, step: dict) -> str:
        """What the step does, in a line (the flow's diagram): its request, its mapping, its
        connection when it is not the flow's."""
        parts = []
        if step.get("path"):
            parts.append(f"{step.get('method', self.default_method)} {step['path']}")
        if step.get("mapping"):
            parts.append(gettext("mapping %(slug)s") % {"slug": step["mapping"]})
        if step.get("connection"):
            parts.append(gettext("on %(slug)s") % {"slug": step["connection"]})
        return " · ".join(parts)

    @abstractmethod
    def run(self, ctx: StepContext) -> StepOutcome:
        """Do the step; raise ``PermanentError``/``MappingError`` to fail the run, anything
        else to have it retried."""


STEP_KINDS: Registry = Registry("step kind")


def register(kind: type[StepKind]) -> type[StepKind]:
    STEP_KINDS.add(kind.name, kind())
    return kind


def check_steps(steps) -> list[str]:
    """Every problem with a flow's steps, each naming its place: ``steps[1].path: unknown field
    "emial"``. [] when they are right."""
    if not isinstance(steps, list):
        return [gettext("steps: a list of steps is expected")]
    problems: list[str] = []
    names: list[str] = []
    for index, step in enumerate(steps):
        where = f"steps[{index}]"
        if not isinstance(step, dict):
            problems.append(
                gettext('%(where)s: a step is an object, e.g. {"name": "verify", "kind": "fetch"}')
                % {"where": where}
            )
            continue
        found = _check_step(where, step, names)
        problems += found
        name = step.get("name")
        if isinstance(name, str):
            names.append(name)
    return problems


def _check_step(where: str, step: dict, earlier: list[str]) -> list[str]:
    name, kind_name = step.get("name"), step.get("kind")
    if not isinstance(name, str) or not NAME.match(name):
        return [
            gettext(
                "%(where)s.name: required, in lower case letters, digits and _ "
                "(verify_payment); later steps read its result as steps.<name>"
            )
            % {"where": where}
        ]
    if name in earlier:
        return [
            gettext('%(where)s.name: "%(name)s" is used twice') % {"where": where, "name": name}
        ]
    if kind_name not in STEP_KINDS:
        return [
            gettext('%(where)s.kind: unknown step kind "%(kind)s" (known: %(known)s)')
            % {"where": where, "kind": kind_name, "known": ", ".join(sorted(STEP_KINDS))}
        ]
    kind = STEP_KINDS[kind_name]
    rules = {**COMMON, **kind.options}
    if not kind.uses_connection:
        rules.pop("connection")
    if kind.mapping == "no":
        rules.pop("mapping")
    problems = [
        f"{where}: {problem}" for problem in check_object(step, rules, example=kind.example)
    ]
    for option in kind.required:
        if option not in step or step[option] in ("", None, []):
            problems.append(
                gettext("%(where)s.%(option)s: required for a %(kind)s step")
                % {"where": where, "option": option, "kind": kind_name}
            )
    if kind.mapping == "yes" and not step.get("mapping"):
        problems.append(
            gettext("%(where)s.mapping: required for a %(kind)s step (it builds what is sent)")
            % {"where": where, "kind": kind_name}
        )
    if problems:
        return problems
    targets = None
    if step.get("mapping"):
        targets, found = _check_mapping(where, step["mapping"], earlier)
        problems += found
    if step.get("connection"):
        from connectors.models import Connection

        if not Connection.objects.filter(slug=step["connection"]).exists():
            problems.append(
                gettext('%(where)s.connection: unknown connection "%(slug)s"')
                % {"where": where, "slug": step["connection"]}
            )
    for option in kind.templates:
        for placeholder in PLACEHOLDER.findall(step.get(option) or ""):
            problem = unknown_read(placeholder, earlier, targets, extra={"id"})
            if problem:
                problems.append(f"{where}.{option}: {problem}")
    problems += [f"{where}.{problem}" for problem in kind.check(step, earlier)]
    return problems


def unknown_read(path: str, earlier: list[str], targets: set[str] | None, extra=()) -> str:
    """Why a placeholder or a path cannot be read ("" when it can): a ``steps.<name>`` that is
    not an earlier step, or, for a step with a mapping, a name that is neither a mapped field
    nor ``trigger.…``/``steps.…``."""
    head, _, rest = path.partition(".")
    if head == "steps":
        step = rest.partition(".")[0]
        if step not in earlier:
            return gettext(
                '"%(path)s" reads step "%(step)s", which is not an earlier step '
                "(earlier: %(earlier)s)"
            ) % {
                "path": path,
                "step": step,
                "earlier": ", ".join(earlier) or gettext("none"),
            }
        return ""
    if targets is not None and head not in CONTEXT_HEADS and path not in targets | set(extra):
        return gettext('unknown field "%(field)s" (the mapping produces: %(targets)s)') % {
            "field": path,
            "targets": ", ".join(sorted(targets)) or gettext("nothing"),
        }
    return ""


def _check_mapping(where: str, slug, earlier: list[str]) -> tuple[set[str] | None, list[str]]:
    from flows.models import Mapping

    mapping = Mapping.objects.filter(slug=slug).prefetch_related("rules").first()
    if mapping is None:
        return None, [
            gettext('%(where)s.mapping: unknown mapping "%(slug)s"')
            % {"where": where, "slug": slug}
        ]
    problems = []
    for rule in mapping.rules.all():
        if rule.source.startswith("steps."):
            problem = unknown_read(rule.source, earlier, None)
            if problem:
                problems.append(
                    gettext("%(where)s.mapping: rule %(position)s: %(problem)s")
                    % {"where": where, "position": rule.position, "problem": problem}
                )
    return mapping.target_paths(), problems


def context(payload, results: dict) -> dict:
    """What a step reads: the trigger's fields at the top (as a one-action flow's mapping reads
    them), the trigger again as ``trigger``, and earlier steps' results as ``steps``."""
    top = dict(payload) if isinstance(payload, dict) else {}
    return {**top, "trigger": payload, "steps": dict(results)}


DESCRIPTIONS = {
    "go_on": gettext_lazy("go on"),
    "stop": gettext_lazy("stop the run"),
    "skip": gettext_lazy("skip the next steps"),
}
