"""What a notification says: what happened, since when, what it affects, what to do, and a
link to the console page. Built only from the incident's words and figures, which the rules
write without secrets or payload data."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from monitoring.choices import NotificationKind
from monitoring.rules import fmt_time

PREFIX = {
    NotificationKind.OPENED: "",
    NotificationKind.REOPENED: _("[Re-opened] "),
    NotificationKind.ESCALATED: _("[Worse] "),
    NotificationKind.RESOLVED: _("[Resolved] "),
    NotificationKind.TEST: _("[Test] "),
    NotificationKind.DIGEST: _("[Digest] "),
}


def in_team_language(build):
    """Messages go to a team, not to the person who clicked: they are written in the hub's
    ``LANGUAGE_CODE``, whatever the language of the request that sent them."""

    @functools.wraps(build)
    def wrapper(*args, **kwargs):
        with translation.override(settings.LANGUAGE_CODE):
            return build(*args, **kwargs)

    return wrapper


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
        return "\n".join([*self.lines, "", _("Open: %(link)s") % {"link": self.link}])


def console_url(path: str) -> str:
    return settings.HUB_CONSOLE_URL.rstrip("/") + path


@in_team_language
def for_incident(incident, kind: str, also=()) -> Message:
    link = console_url(reverse("admin:monitoring_incident_change", args=[incident.pk]))
    severity = incident.get_severity_display()
    if kind == NotificationKind.RESOLVED:
        lines = [
            _("Resolved at %(time)s: %(summary)s.")
            % {"time": fmt_time(incident.resolved_at), "summary": incident.summary},
            _("It was open since %(time)s.") % {"time": fmt_time(incident.opened_at)},
        ]
    else:
        lines = [
            f"{severity}: {incident.summary}.",
            _("Since %(time)s; seen %(n)s time(s).")
            % {"time": fmt_time(incident.opened_at), "n": incident.occurrences},
            _("Affects: %(target)s.") % {"target": incident.target_label},
        ]
        if incident.advice:
            lines.append(_("What to do: %(advice)s") % {"advice": incident.advice})
        for other in also:
            lines.append(_("Also on this connection: %(summary)s.") % {"summary": other.summary})
        if incident.acknowledged_by_id:
            lines.append(_("Acknowledged by %(person)s.") % {"person": incident.acknowledged_by})
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


@in_team_language
def test_message(channel) -> Message:
    return Message(
        kind=NotificationKind.TEST,
        subject=_("[Test] The integration hub can reach channel %(name)s") % {"name": channel.name},
        lines=[
            _("This is a test of the notification channel %(name)s.") % {"name": channel.name},
            str(_("If you read it, alerts of the hub reach you here.")),
        ],
        link=console_url(reverse("admin:monitoring_channel_change", args=[channel.pk])),
        data={"test": True, "channel": channel.slug},
    )


@in_team_language
def digest(incidents) -> Message:
    lines = [
        f"- [{i.get_state_display()}] {i.summary} "
        + _("(since %(time)s)") % {"time": fmt_time(i.opened_at)}
        for i in incidents
    ]
    return Message(
        kind=NotificationKind.DIGEST,
        subject=_("[Digest] %(n)s incident(s) of the integration hub in the last day")
        % {"n": len(lines)},
        lines=lines or [str(_("No incident in the last day."))],
        link=console_url(reverse("admin:monitoring_incident_changelist")),
        data={"incidents": [i.pk for i in incidents]},
    )
