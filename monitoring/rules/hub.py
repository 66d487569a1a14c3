"""The hub itself: no worker heartbeat (workers or scheduler stopped), a credential that the
configured Fernet keys cannot read, and a notification channel that fails."""

from __future__ import annotations

import time

from django.core.cache import cache

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
    title = "The hub itself"
    defaults = {"heartbeat_minutes": 3}

    def evaluate(self, ctx):
        params = ctx.params(self)
        if params is None:
            return []
        found = []
        age = heartbeat_age()
        if age is not None and age > params["heartbeat_minutes"] * 60:
            found.append(
                self.signal(
                    target_type=TargetType.HUB,
                    target_id=None,
                    target_label="the hub",
                    error_class="heartbeat",
                    severity=Severity.CRITICAL,
                    summary=f"No worker heartbeat for {fmt_duration(age)}: the workers or their "
                    "scheduler are not running",
                    advice="Start the workers (manage.py qcluster, or make run); /ready/ names "
                    "what is missing.",
                )
            )
        credential = unreadable_credential()
        if credential is not None:
            found.append(
                self.signal(
                    target_type=TargetType.HUB,
                    target_id=None,
                    target_label="the hub",
                    error_class="fernet",
                    severity=Severity.CRITICAL,
                    connection_id=credential.connection_id,
                    summary="A credential cannot be decrypted with the configured FERNET_KEYS",
                    advice="Put the key it was encrypted with back in FERNET_KEYS (new key "
                    "first, old keys after), then run manage.py rotate_fernet_keys.",
                )
            )
        return found


@register
class ChannelFailing(Rule):
    key = "channel"
    title = "A notification channel fails"
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
                summary=f"Notification channel {channel.name} fails: {channel.last_error}",
                advice="Open the channel: its last notifications and API calls say why. Fix "
                "its connection or credential, then Send test.",
                details={"failures": channel.consecutive_failures},
            )
            for channel in Channel.objects.filter(
                enabled=True, consecutive_failures__gte=params["min_failures"]
            )
        ]
