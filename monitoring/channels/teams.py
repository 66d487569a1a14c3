"""Microsoft Teams incoming webhook (a Workflows "post to a channel when a webhook request is
received" URL, or a legacy connector): an Adaptive Card. The URL's path is the secret, kept as
the connection's credential of kind 'Other'."""

from __future__ import annotations

from connectors.choices import CredentialKind
from monitoring.channels import register
from monitoring.channels.base import post, secret_of


@register
class Teams:
    kind = "teams"

    def payload(self, message) -> dict:
        return {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            {
                                "type": "TextBlock",
                                "text": message.subject,
                                "weight": "Bolder",
                                "wrap": True,
                            },
                            *(
                                {"type": "TextBlock", "text": line, "wrap": True}
                                for line in message.lines
                            ),
                        ],
                        "actions": [
                            {"type": "Action.OpenUrl", "title": "Open", "url": message.link}
                        ],
                    },
                }
            ],
        }

    def send(self, channel, message, incident=None) -> str:
        path = secret_of(channel, CredentialKind.OTHER, "incoming-webhook path")
        return post(channel, path, self.payload(message), log_path="/[incoming webhook]")
