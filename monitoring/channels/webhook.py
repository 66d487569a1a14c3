"""A signed webhook to the site's own systems, signed as Standard Webhooks specifies
(``webhook-id``, ``webhook-timestamp``, ``webhook-signature``) with the reference library; the
key is the connection's 'Webhook signing secret' (``whsec_…``)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from standardwebhooks import Webhook

from connectors.choices import CredentialKind
from monitoring.channels import ChannelError, register
from monitoring.channels.base import post, secret_of


@register
class SignedWebhook:
    kind = "webhook"

    def send(self, channel, message, incident=None) -> str:
        if not channel.path:
            raise ChannelError(f"channel {channel.slug} has no path to post to")
        secret = secret_of(channel, CredentialKind.WEBHOOK_SIGNING_SECRET, "signing secret")
        body = json.dumps(
            {
                "type": f"hub.incident.{message.kind}",
                "subject": message.subject,
                "text": "\n".join(message.lines),
                "link": message.link,
                "data": message.data or {},
            },
            separators=(",", ":"),
        )
        msg_id = f"msg_{uuid.uuid4().hex}"
        when = datetime.now(UTC)
        try:
            signature = Webhook(secret).sign(msg_id, when, body)
        except Exception:  # a malformed key: say so, without it
            raise ChannelError(
                f"channel {channel.slug}: the signing secret is not a valid Standard Webhooks "
                "key (whsec_ followed by base64)"
            ) from None
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": signature,
        }
        return post(channel, channel.path, None, data=body.encode(), headers=headers)
