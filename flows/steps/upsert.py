"""``upsert``: today's upsert without duplicates, as a step (look up by the match key, then
update, leave alone, or create once with the step's idempotency key).

    {"name": "customer", "kind": "upsert", "connection": "crm", "mapping": "payer-to-contact",
     "match_key": "email", "lookup_path": "/contacts?email={email}", "path": "/contacts",
     "update_path": "/contacts/{id}"}

Later steps read ``steps.customer.record_id`` and ``steps.customer.outcome`` (created,
updated, unchanged) and ``steps.customer.data`` (what was sent)."""

from __future__ import annotations

from django.utils.translation import gettext, gettext_lazy

from flows.steps.base import StepContext, StepKind, StepOutcome, register


@register
class Upsert(StepKind):
    name = "upsert"
    label = gettext_lazy("Upsert (find, then update or create once)")
    options = {
        "method": ("POST", "PUT"),
        "path": str,
        "match_key": str,
        "lookup_path": str,
        "lookup_results": str,
        "record_id_field": str,
        "update_method": ("PATCH", "PUT", "POST"),
        "update_path": str,
    }
    required = ("path", "match_key", "lookup_path", "update_path")
    default_method = "POST"

    def summary(self, step: dict) -> str:
        return " · ".join(
            [
                gettext("by %(key)s: find %(lookup)s, else %(create)s")
                % {
                    "key": step.get("match_key", "?"),
                    "lookup": step.get("lookup_path", "?"),
                    "create": f"{step.get('method', 'POST')} {step.get('path', '?')}",
                },
                *[p for p in [super().summary({**step, "path": ""})] if p],
            ]
        )

    mapping = "yes"
    example = (
        '{"name": "customer", "kind": "upsert", "mapping": "payer-to-contact", '
        '"match_key": "email", "lookup_path": "/contacts?email={email}", '
        '"path": "/contacts", "update_path": "/contacts/{id}"}'
    )

    def check(self, step: dict, earlier: list[str]) -> list[str]:
        from flows.models import Mapping
        from flows.steps.base import PLACEHOLDER

        mapping = Mapping.objects.filter(slug=step["mapping"]).first()
        if mapping is None:
            return []  # said already
        targets = mapping.target_paths()
        problems = []
        for option, extra in (("path", set()), ("lookup_path", set()), ("update_path", {"id"})):
            for name in PLACEHOLDER.findall(step[option]):
                if name not in targets | extra:
                    problems.append(
                        gettext(
                            '%(option)s: unknown field "%(field)s" (the mapping produces: '
                            "%(targets)s)"
                        )
                        % {"option": option, "field": name, "targets": ", ".join(sorted(targets))}
                    )
        if step["match_key"] not in targets:
            problems.append(
                gettext('match_key: unknown field "%(field)s": not a mapped target')
                % {"field": step["match_key"]}
            )
        return problems

    def run(self, ctx: StepContext) -> StepOutcome:
        from flows.services.runner import Action, perform_action

        step = ctx.step
        data = ctx.mapped()
        action = Action(
            scope=f"{ctx.flow.pk}:{ctx.name}",
            is_upsert=True,
            connection=ctx.connection(),
            method=step.get("method", "POST"),
            path=step["path"],
            match_key=step["match_key"],
            lookup_path=step["lookup_path"],
            lookup_results=step.get("lookup_results", "results"),
            record_id_field=step.get("record_id_field", "id"),
            update_method=step.get("update_method", "PATCH"),
            update_path=step["update_path"],
        )
        outcome, record_id = perform_action(action, data, ctx.key, ctx.run)
        return StepOutcome(
            result={"outcome": str(outcome), "record_id": record_id, "data": data},
            sent=data,
            outcome=str(outcome),
            record_id=record_id,
        )
