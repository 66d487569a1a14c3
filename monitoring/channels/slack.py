"""Slack incoming webhook: the connection's base URL is https://hooks.slack.com and the rest of
the webhook URL (``/services/T…/B…/…``, a secret) is its credential of kind 'Other'."""

from __future__ import annotations

from connectors.choices import CredentialKind
from monitoring.channels import register
from monitoring.channels.base import post, secret_of

COLOURS = {"critical": "#b42318", "warning": "#b54708", "resolved": "#067647"}


@register
class Slack:
    kind = "slack"

    def payload(self, message) -> dict:
        colour = COLOURS[
            "resolved" if message.kind == "resolved" else message.severity or "warning"
        ]
        return {
            "text": message.subject,
            "attachments": [
                {
                    "color": colour,
                    "blocks": [
                        {
                            "type": "section",
                            "text": {"type": "mrkdwn", "text": "\n".join(message.lines)},
                        },
                        {
                            "type": "actions",
                            "elements": [
                                {
                                    "type": "button",
                                    "text": {"type": "plain_text", "text": "Open in the console"},
                                    "url": message.link,
                                }
                            ],
                        },
                    ],
                }
            ],
        }

    def send(self, channel, message, incident=None) -> str:
        path = secret_of(channel, CredentialKind.OTHER, "incoming-webhook path")
        return post(channel, path, self.payload(message), log_path="/[incoming webhook]")
