"""The health of a connection (and of an endpoint or a sync job), from what happened: its
active incidents decide healthy / degraded / failing, with their summaries as the reason; a
paused, disabled or reauthorisation-required connection says so first."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from connectors.choices import ConnectionStatus
from monitoring.choices import ACTIVE_STATES, Health, Severity, TargetType
from monitoring.models import Incident

__all__ = ["HealthState", "flow_health", "health_by_target"]

STATIC = {
    ConnectionStatus.PAUSED: Health.PAUSED,
    ConnectionStatus.DISABLED: Health.DISABLED,
    ConnectionStatus.REAUTH_REQUIRED: Health.REAUTH_REQUIRED,
}


@dataclass
class HealthState:
    health: str
    reason: str

    @property
    def label(self) -> str:
        return Health(self.health).label

    @property
    def badge(self):
        """The console's badge of this health (connectors/admin/status.py), its reason on hover."""
        from connectors.admin.status import status

        return status("health", self.health, self.label, self.reason)


def flow_health(flows) -> dict[int, HealthState]:
    """A flow is as healthy as the connection it calls and the endpoint that triggers it."""
    flows = list(flows)
    connections = health_by_target(
        TargetType.CONNECTION, [f.connection for f in flows if f.connection_id]
    )
    endpoints = health_by_target(TargetType.ENDPOINT, [f.endpoint for f in flows if f.endpoint_id])
    rank = {Health.HEALTHY: 0, Health.DEGRADED: 1, Health.PAUSED: 1, Health.DISABLED: 1}
    out = {}
    for flow in flows:
        states = [connections.get(flow.connection_id), endpoints.get(flow.endpoint_id)]
        states = [s for s in states if s is not None]
        if not flow.enabled:
            out[flow.pk] = HealthState(Health.DISABLED, _("disabled"))
            continue
        worst = max(states, key=lambda s: rank.get(s.health, 2), default=None)
        out[flow.pk] = worst or HealthState(Health.HEALTHY, _("no open incident"))
    return out


def health_by_target(target_type: str, objects) -> dict[int, HealthState]:
    """Health of each object (connections, endpoints or sync jobs), from one query."""
    objects = list(objects)
    ids = [o.pk for o in objects]
    field = {
        TargetType.CONNECTION: "connection_id",
        TargetType.ENDPOINT: "endpoint_id",
        TargetType.SYNC_JOB: "target_id",
    }[target_type]
    incidents = Incident.objects.filter(state__in=ACTIVE_STATES, **{f"{field}__in": ids})
    if target_type == TargetType.SYNC_JOB:
        incidents = incidents.filter(target_type=TargetType.SYNC_JOB)
    by_target = defaultdict(list)
    # "critical" sorts before "warning": the worst first
    for incident in incidents.order_by("severity", "-opened_at").only("severity", "summary", field):
        by_target[getattr(incident, field)].append(incident)
    out = {}
    for obj in objects:
        static = STATIC.get(getattr(obj, "status", None))
        found = by_target.get(obj.pk, [])
        reason = "; ".join(i.summary for i in found[:3])
        if static is not None:
            out[obj.pk] = HealthState(static, getattr(obj, "status_reason", "") or reason)
        elif getattr(obj, "enabled", True) is False:
            out[obj.pk] = HealthState(Health.DISABLED, _("disabled"))
        elif any(i.severity == Severity.CRITICAL for i in found):
            out[obj.pk] = HealthState(Health.FAILING, reason)
        elif found:
            out[obj.pk] = HealthState(Health.DEGRADED, reason)
        else:
            out[obj.pk] = HealthState(Health.HEALTHY, _("no open incident"))
    return out
