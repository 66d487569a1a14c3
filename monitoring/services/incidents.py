"""One monitoring pass: roll up, run every rule, turn signals into incidents, notify.

State changes of an incident (each one message per routed channel, see ``notify``):

* a new signal opens an incident (*opened*);
* a signal that stays updates it; a higher level or a worse severity is an *escalation*;
* a signal absent for ``HUB_INCIDENT_RESOLVE_AFTER_MINUTES`` resolves it (*resolved*); one
  that returns within that time never left (hysteresis: a flapping partner does not storm);
* a signal that returns after the incident resolved re-opens it (*re-opened*), unless a person
  chose to ignore it: an ignored incident counts occurrences and stays silent.

Only the incidents of rules that ran are cleared: a rule that raised keeps its incidents as
they were (the failure is logged), it does not resolve them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation

from monitoring.choices import ACTIVE_STATES, IncidentState, NotificationKind, Severity
from monitoring.models import Incident
from monitoring.rules import RULES, Signal
from monitoring.services.context import Context
from monitoring.services.rollups import roll_up

__all__ = ["PassReport", "acknowledge", "apply_signals", "evaluate", "ignore", "run_pass"]

logger = logging.getLogger("monitoring")

SEVERITY_RANK = {Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass
class PassReport:
    signals: int = 0
    changes: list[tuple[Incident, str]] = field(default_factory=list)
    failed_rules: list[str] = field(default_factory=list)


def evaluate(now: datetime, only: list[str] | None = None) -> tuple[dict[str, Signal], set, list]:
    """Run the rules (all, or ``only`` these keys): the signals by key, the rules that ran,
    and the rules that raised."""
    ctx = Context(now)
    signals: dict[str, Signal] = {}
    ran, failed = set(), []
    for key, rule in sorted(RULES.items()):
        if only is not None and key not in only:
            continue
        try:
            found = rule.evaluate(ctx)
        except Exception:
            logger.exception("monitoring rule %s failed; its incidents are left as they are", key)
            failed.append(key)
            continue
        ran.add(key)
        for signal in found:
            signals[signal.key] = signal
    return signals, ran, failed


def _fill(incident: Incident, signal: Signal) -> None:
    incident.summary = signal.summary[:500]
    incident.advice = signal.advice[:500]
    incident.details = {**signal.details, "link": signal.link} if signal.link else signal.details
    incident.severity = signal.severity
    incident.level = signal.level
    incident.target_label = signal.target_label[:200]


def apply_signals(signals: dict[str, Signal], ran: set, now: datetime) -> list:
    """Open, update, re-open and resolve incidents; return the state changes to notify."""
    changes: list[tuple[Incident, str]] = []
    resolve_after = timedelta(minutes=settings.HUB_INCIDENT_RESOLVE_AFTER_MINUTES)
    with transaction.atomic():
        existing = {
            incident.key: incident
            for incident in Incident.objects.select_for_update().filter(
                Q(key__in=list(signals)) | Q(state__in=ACTIVE_STATES, rule__in=list(ran))
            )
        }
        for key, signal in signals.items():
            incident = existing.get(key)
            if incident is None:
                incident = Incident(
                    key=key,
                    rule=signal.rule,
                    target_type=signal.target_type,
                    target_id=signal.target_id,
                    connection_id=signal.connection_id,
                    endpoint_id=signal.endpoint_id,
                    error_class=signal.error_class,
                    first_seen_at=now,
                    opened_at=now,
                    last_seen_at=now,
                )
                _fill(incident, signal)
                incident.save()
                changes.append((incident, NotificationKind.OPENED))
                continue
            worse = signal.level > incident.level or SEVERITY_RANK.get(
                signal.severity, 0
            ) > SEVERITY_RANK.get(incident.severity, 0)
            incident.occurrences += 1
            incident.last_seen_at = now
            if incident.state == IncidentState.IGNORED:
                _fill(incident, signal)
                incident.save()
                continue
            if incident.state == IncidentState.RESOLVED:
                incident.state = IncidentState.OPEN
                incident.opened_at = now
                incident.times_opened += 1
                incident.resolved_at = None
                incident.acknowledged_at = None
                incident.acknowledged_by = None
                incident.notified_level = 0
                incident.clear_since = None
                _fill(incident, signal)
                incident.save()
                changes.append((incident, NotificationKind.REOPENED))
                continue
            incident.clear_since = None
            _fill(incident, signal)
            incident.save()
            if worse:
                changes.append((incident, NotificationKind.ESCALATED))
        for key, incident in existing.items():
            if key in signals or not incident.is_active or incident.rule not in ran:
                continue
            if incident.clear_since is None:
                incident.clear_since = now
                incident.save(update_fields=["clear_since"])
            elif now - incident.clear_since >= resolve_after:
                incident.state = IncidentState.RESOLVED
                incident.resolved_at = now
                incident.save(update_fields=["state", "resolved_at"])
                changes.append((incident, NotificationKind.RESOLVED))
    return changes


def run_pass(now: datetime | None = None) -> PassReport:
    """The periodic pass (every minute): rollups, rules, incidents, notifications."""
    from monitoring.services.notify import notify_changes

    now = now or timezone.now()
    roll_up(now)
    # incidents are written for a team, in the hub's language, whoever runs the pass
    with translation.override(settings.LANGUAGE_CODE):
        signals, ran, failed = evaluate(now)
    changes = apply_signals(signals, ran, now)
    notify_changes(changes, now)
    for incident, kind in changes:
        logger.info(
            "incident %s %s: %s",
            incident.pk,
            kind,
            incident.summary,
            extra={"incident": incident.pk, "rule": incident.rule, "change": str(kind)},
        )
    return PassReport(signals=len(signals), changes=changes, failed_rules=failed)


def acknowledge(incident: Incident, user) -> None:
    """A person is on it: it stays open (and resolves by itself) but is marked as theirs."""
    if incident.state == IncidentState.OPEN:
        incident.state = IncidentState.ACKNOWLEDGED
        incident.acknowledged_at = timezone.now()
        incident.acknowledged_by = user
        incident.save(update_fields=["state", "acknowledged_at", "acknowledged_by"])


def ignore(incident: Incident, user) -> None:
    """Known and accepted: the signal may return, the channels are not told."""
    incident.state = IncidentState.IGNORED
    incident.acknowledged_at = timezone.now()
    incident.acknowledged_by = user
    incident.save(update_fields=["state", "acknowledged_at", "acknowledged_by"])
