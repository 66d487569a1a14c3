"""Sending: which channels hear of an incident's state change, the anti-storm rules, and the
record of every delivery.

* Routing: a channel takes an incident when it is enabled, not a digest, the incident's rule is
  among its rules (or it has none), its connection among its connections (or it has none) and
  the incident at least as severe as the channel's minimum. A channel never hears of its own
  failure: the others do.
* Anti-storm: at most one message per incident and channel per cooldown, except an escalation
  and a resolution; a resolution is told only where the opening was.
* A failing channel never blocks another: each delivery is tried and recorded on its own.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.utils import timezone

from monitoring import messages
from monitoring.channels import CHANNELS, ChannelError
from monitoring.choices import (
    ACTIVE_STATES,
    DeliveryStatus,
    NotificationKind,
    Severity,
    TargetType,
)
from monitoring.models import Channel, Incident, Notification

__all__ = ["deliver", "notify_changes", "routed_channels", "send_digests", "send_test"]

logger = logging.getLogger("monitoring")

RANK = {Severity.WARNING: 1, Severity.CRITICAL: 2}
# the rules that read the same calls of a connection
CALL_RULES = frozenset({"error_rate", "consecutive_failures", "circuit"})
ALWAYS = (NotificationKind.ESCALATED, NotificationKind.RESOLVED)


def routed_channels(incident: Incident, channels: list[Channel]) -> list[Channel]:
    out = []
    for channel in channels:
        if not channel.enabled or channel.digest:
            continue
        if incident.target_type == TargetType.CHANNEL and incident.target_id == channel.pk:
            continue
        if channel.rules and incident.rule not in channel.rules:
            continue
        wanted = {c.pk for c in channel.connections.all()}
        if wanted and incident.connection_id not in wanted:
            continue
        if RANK.get(incident.severity, 0) < RANK.get(channel.min_severity, 0):
            continue
        out.append(channel)
    return out


def deliver(channel: Channel, message, *, incident: Incident | None = None) -> Notification:
    """One delivery, recorded whatever happens; the channel's own health updated."""
    now = timezone.now()
    try:
        try:
            correlation_id = CHANNELS.lookup(channel.kind).send(channel, message, incident)
        except ChannelError:
            raise
        except Exception as exc:  # a bug or an unexpected answer: this channel only
            logger.exception("channel %s raised while sending", channel.slug)
            raise ChannelError(f"the channel failed unexpectedly ({type(exc).__name__})") from None
    except ChannelError as error:
        channel.consecutive_failures += 1
        channel.last_failure_at = now
        channel.last_error = error.message[:500]
        channel.save(update_fields=["consecutive_failures", "last_failure_at", "last_error"])
        logger.warning(
            "notification to channel %s failed: %s",
            channel.slug,
            error.message,
            extra={"channel": channel.slug, "correlation_id": error.correlation_id},
        )
        return Notification.objects.create(
            channel=channel,
            incident=incident,
            kind=message.kind,
            status=DeliveryStatus.FAILED,
            subject=message.subject[:300],
            error=error.message[:500],
            correlation_id=error.correlation_id,
        )
    channel.consecutive_failures = 0
    channel.last_sent_at = now
    channel.save(update_fields=["consecutive_failures", "last_sent_at"])
    return Notification.objects.create(
        channel=channel,
        incident=incident,
        kind=message.kind,
        status=DeliveryStatus.SENT,
        subject=message.subject[:300],
        correlation_id=correlation_id,
    )


def _in_cooldown(incident: Incident, channel: Channel, now: datetime) -> bool:
    since = now - timedelta(minutes=channel.cooldown_minutes)
    return Notification.objects.filter(
        incident=incident,
        channel=channel,
        status=DeliveryStatus.SENT,
        created_at__gte=since,
    ).exists()


def _siblings(incident: Incident) -> list[Incident]:
    """The other active incidents that one outage of the same connection opens with it."""
    if incident.rule not in CALL_RULES or not incident.connection_id:
        return []
    return list(
        Incident.objects.filter(
            connection_id=incident.connection_id, rule__in=CALL_RULES, state__in=ACTIVE_STATES
        )
        .exclude(pk=incident.pk)
        .order_by("severity", "opened_at")
    )


def _order(change) -> tuple:
    incident, kind = change
    # resolutions first (a sibling may have to speak in their place), then the worst first
    return (kind != NotificationKind.RESOLVED, RANK.get(incident.severity, 0) * -1, incident.pk)


def notify_changes(changes, now: datetime) -> None:
    """Tell the routed channels of each state change, within the anti-storm rules.

    One outage of a partner opens several incidents of its connection at once (an error rate, a
    failure streak, an open circuit): the first one told speaks for the others, which are
    listed in its message and stay in the console; a sibling that becomes worse than it, or
    outlives it, speaks in turn."""
    if not changes:
        return
    channels = list(Channel.objects.filter(enabled=True).prefetch_related("connections"))
    queue = sorted(changes, key=_order)
    while queue:
        incident, kind = queue.pop(0)
        if kind == NotificationKind.RESOLVED and not incident.notified_open:
            continue  # its opening was never told (suppressed or no channel): stay quiet
        siblings = _siblings(incident)
        voices = [s for s in siblings if s.notified_open]
        if kind in (NotificationKind.OPENED, NotificationKind.REOPENED) and voices:
            continue  # told through its sibling, whose message lists it
        if (
            kind == NotificationKind.ESCALATED
            and not incident.notified_open
            and voices
            and RANK.get(incident.severity, 0) <= max(RANK.get(v.severity, 0) for v in voices)
        ):
            continue  # its sibling speaks, and is as bad
        if kind == NotificationKind.RESOLVED:
            # siblings still open, never told: they speak now that this one is over
            queue.extend((s, NotificationKind.OPENED) for s in siblings if not s.notified_open)
        message = messages.for_incident(
            incident, kind, also=[] if kind == NotificationKind.RESOLVED else siblings
        )
        told = False
        for channel in routed_channels(incident, channels):
            if kind not in ALWAYS and _in_cooldown(incident, channel, now):
                continue
            if kind == NotificationKind.ESCALATED and 0 < incident.level <= incident.notified_level:
                continue  # a graded level is told once, even if it drops and rises again
            told |= deliver(channel, message, incident=incident).status == DeliveryStatus.SENT
        if told:
            incident.notified_at = now
            incident.notified_level = max(incident.notified_level, incident.level)
            incident.notified_open = kind != NotificationKind.RESOLVED
            incident.save(update_fields=["notified_at", "notified_level", "notified_open"])


def send_test(channel: Channel) -> Notification:
    """The channel's *Send test*: one test message, recorded like any other."""
    return deliver(channel, messages.test_message(channel))


def send_digests(now: datetime | None = None) -> int:
    """The daily digest: the incidents opened or still active in the last day, one message
    per digest channel."""
    now = now or timezone.now()
    since = now - timedelta(days=1)
    sent = 0
    for channel in Channel.objects.filter(enabled=True, digest=True):
        incidents = [
            i
            for i in Incident.objects.filter(last_seen_at__gte=since).order_by("opened_at")
            if not channel.rules or i.rule in channel.rules
        ]
        deliver(channel, messages.digest(incidents))
        sent += 1
    return sent
