"""The brief's checklist on each production connection's page: Auth, Secrets, Flows, Errors,
Idempotency, Logs, Monitoring, GDPR, each green or red with the checks that decide it."""

from __future__ import annotations

from urllib.parse import urlencode

from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from connectors.admin.status import status
from connectors.choices import Environment
from connectors.models import Connection
from governance.gate import CATEGORIES, findings


def checklist_panel(connection) -> str:
    if connection.environment != Environment.PRODUCTION:
        return ""
    found = [f for f in findings([connection]) if f.connection_id == connection.pk]
    rows = []
    for category in CATEGORIES:
        mine = [f for f in found if f.category == category]
        if not mine:
            rows.append((category, status("level", "ok", _("ok")), ""))
            continue
        detail = format_html_join(
            "", "<br>hub.{}: {} <em>{}</em>", ((f.id, f.message, f.hint) for f in mine)
        )
        level = "error" if any(f.level == "error" for f in mine) else "warning"
        rows.append((category, status("level", level, _("to fix")), detail))
    twins = Connection.objects.filter(
        environment=Environment.SANDBOX, service_kind=connection.service_kind
    ).order_by("slug")[:5]
    compare = format_html_join(
        ", ",
        '<a href="{}?{}">{}</a>',
        (
            (
                reverse("governance_diff"),
                urlencode({"sandbox": twin.slug, "production": connection.slug}),
                twin.slug,
            )
            for twin in twins
        ),
    )
    return format_html(
        "<strong>{}</strong> (manage.py check --deploy --tag integrations --database default)"
        '<table class="hub-checklist">{}</table>{}',
        _("Before production"),
        format_html_join(
            "",
            '<tr><th scope="row">{}</th><td>{}{}</td></tr>',
            rows,
        ),
        format_html("{} {}.", _("Works in test, not in prod? Compare with"), compare)
        if twins
        else "",
    )


def install() -> None:
    from connectors.admin.connection import CONNECTION_PANELS

    if checklist_panel not in CONNECTION_PANELS:
        CONNECTION_PANELS.append(checklist_panel)
