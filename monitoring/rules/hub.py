"""The hub itself: no worker heartbeat (workers or scheduler stopped), a credential that the
configured Fernet keys cannot read, and a notification channel that fails."""

from __future__ import annotations

import time

from django.core.cache import cache
from django.utils.translation import gettext_lazy as _

from connectors.models import Credential
from connectors.secrets import SecretUnreadable
from monitoring.choices import Severity, TargetType
from monitoring.models import Channel
from monitoring.rules import Rule, fmt_duration, register

HEARTBEAT_KEY = "hub:monitoring:heartbeat"


def beat() -> None:
    """Written by a scheduled task every minute: seen, it proves the scheduler and a worker."""
    cache.set(HEARTBEAT_KEY, time.time(), timeout=7 * 86400)


def heartbeat_age() -> float | None:
    """Seconds since the last heartbeat, ``None`` if there never was one."""
    at = cache.get(HEARTBEAT_KEY)
    return None if at is None else max(0.0, time.time() - at)


def running_clusters() -> int:
    """Worker clusters alive now, as django-q2 reports them (their stats expire in seconds)."""
    from django_q.status import Stat

    try:
        return len(Stat.get_all())
    except Exception:  # a broker that does not answer: no cluster can be seen
        return 0


def workers_problem(limit_seconds: float) -> tuple[str, str] | None:
    """``(error class, words)`` when the heartbeat is stale: no cluster at all, or clusters
    that run but whose scheduler does not run the schedules; ``None`` when all is well."""
    age = heartbeat_age()
    if age is not None and age <= limit_seconds:
        return None
    since = _("yet") if age is None else _("for %(age)s") % {"age": fmt_duration(age)}
    clusters = running_clusters()
    if clusters:
        return (
            "scheduler",
            _(
                "%(n)s worker cluster(s) run, but no scheduled task ran %(since)s: the "
                "scheduler does not run the schedules"
            )
            % {"n": clusters, "since": since},
        )
    return "heartbeat", _("No worker heartbeat %(since)s: no worker cluster runs") % {
        "since": since
    }


def unreadable_credential() -> Credential | None:
    """The newest credential, if the configured keys cannot decrypt it."""
    credential = Credential.objects.order_by("-updated_at").first()
    if credential is None:
        return None
    try:
        credential.value.reveal()
    except SecretUnreadable:
        return credential
    return None


@register
class HubItself(Rule):
    key = "hub"
    title = _("The hub itself")
    defaults = {"heartbeat_minutes": 3}

    def evaluate(self, ctx):
        params = ctx.params(self)
        if params is None:
            return []
        found = []
        # before any heartbeat (a hub just installed) there is nothing to compare with
        problem = workers_problem(params["heartbeat_minutes"] * 60) if heartbeat_age() else None
        if problem is not None:
            error_class, words = problem
            found.append(
                self.hub_signal(
                    error_class=error_class,
                    severity=Severity.CRITICAL,
                    summary=words,
                    advice=_(
                        "Start the workers (manage.py qcluster, or make run); if they run, "
                        "check the schedules in Task queue → Scheduled tasks (next run, repeats) "
                        "and the cluster's log; /ready/ names what is missing."
                    ),
                )
            )
        credential = unreadable_credential()
        if credential is not None:
            found.append(
                self.hub_signal(
                    error_class="fernet",
                    severity=Severity.CRITICAL,
                    connection_id=credential.connection_id,
                    summary=_("A credential cannot be decrypted with the configured FERNET_KEYS"),
                    advice=_(
                        "Put the key it was encrypted with back in FERNET_KEYS (new key "
                        "first, old keys after), then run manage.py rotate_fernet_keys."
                    ),
                )
            )
        return found


@register
class ChannelFailing(Rule):
    key = "channel"
    title = _("A notification channel fails")
    defaults = {"min_failures": 1}

    def evaluate(self, ctx):
        params = ctx.params(self)
        if params is None:
            return []
        return [
            self.signal(
                target_type=TargetType.CHANNEL,
                target_id=channel.pk,
                target_label=f"channel {channel.slug}",
                severity=Severity.CRITICAL,
                summary=_("Notification channel %(name)s fails: %(error)s")
                % {"name": channel.name, "error": channel.last_error},
                advice=_(
                    "Open the channel: its last notifications and API calls say why. Fix "
                    "its connection or credential, then Send test."
                ),
                details={"failures": channel.consecutive_failures},
            )
            for channel in Channel.objects.filter(
                enabled=True, consecutive_failures__gte=params["min_failures"]
            )
        ]
