"""Email, through Django's email backend (``EMAIL_URL``). The connection's owner is added to
the recipients when it is an address."""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email

from monitoring.channels import ChannelError, register


def addresses(text: str) -> list[str]:
    out = []
    for part in (text or "").replace(",", "\n").splitlines():
        part = part.strip()
        if not part:
            continue
        try:
            validate_email(part)
        except ValidationError:
            continue
        out.append(part)
    return out


@register
class Email:
    kind = "email"

    def send(self, channel, message, incident=None) -> str:
        recipients = addresses(channel.recipients)
        owner = incident.connection.owner if incident and incident.connection_id else ""
        for address in addresses(owner):
            if address not in recipients:
                recipients.append(address)
        if not recipients:
            raise ChannelError(f"channel {channel.slug} has no valid recipient")
        mail = EmailMessage(
            subject=message.subject,
            body=message.text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=recipients,
        )
        try:
            mail.send(fail_silently=False)
        except (smtplib.SMTPException, OSError) as exc:
            # the exception names the server and the refusal, never a password
            raise ChannelError(f"email not sent: {type(exc).__name__}: {exc}"[:500]) from None
        return ""
