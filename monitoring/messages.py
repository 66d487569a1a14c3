"""What a notification says: what happened, since when, what it affects, what to do, and a
link to the console page. Built only from the incident's words and figures, which the rules
write without secrets or payload data."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse

from monitoring.choices import NotificationKind
from monitoring.rules import fmt_time

PREFIX = {
    NotificationKind.OPENED: "",
    NotificationKind.REOPENED: "[Re-opened] ",
    NotificationKind.ESCALATED: "[Worse] ",
    NotificationKind.RESOLVED: "[Resolved] ",
    NotificationKind.TEST: "[Test] ",
    NotificationKind.DIGEST: "[Digest] ",
}


@dataclass
class Message:
    kind: str
    subject: str
    lines: list[str]
    link: str
    severity: str = ""
    data: dict | None = None

    @property
    def text(self) -> str:
        return "\n".join([*self.lines, "", f"Open: {self.link}"])


def console_url(path: str) -> str:
    return settings.HUB_CONSOLE_URL.rstrip("/") + path


def for_incident(incident, kind: str, also=()) -> Message:
    link = console_url(reverse("admin:monitoring_incident_change", args=[incident.pk]))
    severity = incident.get_severity_display()
    if kind == NotificationKind.RESOLVED:
        lines = [
            f"Resolved at {fmt_time(incident.resolved_at)}: {incident.summary}.",
            f"It was open since {fmt_time(incident.opened_at)}.",
        ]
    else:
        lines = [
            f"{severity}: {incident.summary}.",
            f"Since {fmt_time(incident.opened_at)}; seen {incident.occurrences} time(s).",
            f"Affects: {incident.target_label}.",
        ]
        if incident.advice:
            lines.append(f"What to do: {incident.advice}")
        for other in also:
            lines.append(f"Also on this connection: {other.summary}.")
        if incident.acknowledged_by_id:
            lines.append(f"Acknowledged by {incident.acknowledged_by}.")
    return Message(
        kind=kind,
        subject=f"{PREFIX.get(kind, '')}{incident.summary}"[:300],
        lines=lines,
        link=link,
        severity=incident.severity,
        data={
            "incident": incident.pk,
            "rule": incident.rule,
            "state": incident.state,
            "severity": incident.severity,
            "target": {"type": incident.target_type, "id": incident.target_id},
            "summary": incident.summary,
            "advice": incident.advice,
            "opened_at": incident.opened_at.isoformat(),
            "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
        },
    )


def test_message(channel) -> Message:
    return Message(
        kind=NotificationKind.TEST,
        subject=f"[Test] The integration hub can reach channel {channel.name}",
        lines=[
            f"This is a test of the notification channel {channel.name}.",
            "If you read it, alerts of the hub reach you here.",
        ],
        link=console_url(reverse("admin:monitoring_channel_change", args=[channel.pk])),
        data={"test": True, "channel": channel.slug},
    )


def digest(incidents) -> Message:
    lines = [
        f"- [{i.get_state_display()}] {i.summary} (since {fmt_time(i.opened_at)})"
        for i in incidents
    ]
    return Message(
        kind=NotificationKind.DIGEST,
        subject=f"[Digest] {len(lines)} incident(s) of the integration hub in the last day",
        lines=lines or ["No incident in the last day."],
        link=console_url(reverse("admin:monitoring_incident_changelist")),
        data={"incidents": [i.pk for i in incidents]},
    )
