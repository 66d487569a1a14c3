"""What monitoring adds to other apps' console pages, through their hooks (they never import
monitoring): the health column of the connection list, and the health panel of a connection."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from connectors.admin.status import status
from monitoring.choices import ACTIVE_STATES, Health, Severity, TargetType
from monitoring.models import Incident
from monitoring.services.health import STATIC, health_by_target


def annotate_health(queryset):
    """The worst active incident of each connection, as two annotations (one query)."""
    worst = Incident.objects.filter(connection=OuterRef("pk"), state__in=ACTIVE_STATES).order_by(
        "severity",
        "-opened_at",  # "critical" sorts before "warning"
    )
    return queryset.annotate(
        worst_severity=Subquery(worst.values("severity")[:1]),
        worst_summary=Subquery(worst.values("summary")[:1]),
    )


@admin.display(description=_("Health"))
def health_column(obj):
    static = STATIC.get(obj.status)
    severity = getattr(obj, "worst_severity", None)
    summary = getattr(obj, "worst_summary", None) or ""
    if static is not None:
        health, reason = static, obj.status_reason or summary
    elif severity == Severity.CRITICAL:
        health, reason = Health.FAILING, summary
    elif severity:
        health, reason = Health.DEGRADED, summary
    else:
        health, reason = Health.HEALTHY, _("no open incident")
    return status("health", health, Health(health).label, reason)


def connection_health_panel(connection) -> str:
    """The connection page's health: its state, why, and its open incidents."""
    state = health_by_target(TargetType.CONNECTION, [connection])[connection.pk]
    incidents = Incident.objects.filter(connection=connection, state__in=ACTIVE_STATES)[:10]
    links = format_html_join(
        "",
        '<li><a href="{}">{}</a> ({})</li>',
        (
            (
                reverse("admin:monitoring_incident_change", args=[i.pk]),
                i.summary,
                i.get_state_display(),
            )
            for i in incidents
        ),
    )
    charts = reverse("admin:monitoring_connection_charts", args=[connection.pk])
    return format_html(
        'Health: {} — {}<ul>{}</ul><a href="{}">Volume, errors and latency over 24 h and 7 '
        "days</a>",
        state.badge,
        state.reason,
        links,
        charts,
    )


def install() -> None:
    from connectors.admin.connection import CONNECTION_PANELS, LIST_COLUMNS, LIST_QUERYSET_HOOKS

    if health_column not in LIST_COLUMNS:
        LIST_COLUMNS.append(health_column)
        LIST_QUERYSET_HOOKS.append(annotate_health)
        CONNECTION_PANELS.insert(0, connection_health_panel)
