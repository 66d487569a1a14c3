"""The console in a real browser: Debian's Chromium driven by Playwright (``make test-browser``;
never ``playwright install``, which downloads a browser). The hub is pytest-django's live
server on 127.0.0.1 with the demo configuration applied to it (the sandbox partners), and one
staff user per role."""

from __future__ import annotations

import os
import shutil

import pytest

# Playwright's sync API runs an event loop in the test's thread; the ORM calls of the fixtures
# and assertions are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1366, "height": 768}


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": LAPTOP}


class Hub:
    """The seeded hub: its URL, its secrets (which no page may show), and logging in."""

    def __init__(self, url: str, secrets_: list[str]):
        self.url = url
        self.secrets = secrets_

    def shot(self, page, name: str) -> None:
        """A screenshot for the docs (docs/img/, ``make screenshots``), when asked for."""
        folder = os.environ.get("HUB_SCREENSHOTS")
        if folder:
            page.screenshot(path=os.path.join(folder, f"{name}.png"))

    def login(self, page, username: str) -> None:
        page.set_default_timeout(10_000)
        page.goto(f"{self.url}/admin/login/?next=/admin/")
        page.fill("#id_username", username)
        page.fill("#id_password", "x-" + username)  # make_staff's password
        page.click("input[type=submit]")
        page.wait_for_url(f"{self.url}/admin/")


@pytest.fixture
def hub(demo, live_server, make_staff):
    """The demo configuration on the live server, one user per role, and events of each kind:
    processed, failed (the CRM refused it) and unhandled."""
    from connectors.roles import ADMINS, AUDITORS, DATA_PROTECTION, OPERATORS
    from sandbox.emitter import emit, payment_event
    from webhooks.models import WebhookEvent
    from webhooks.services.processing import process_event

    for role in (ADMINS, OPERATORS, AUDITORS, DATA_PROTECTION):
        make_staff(role)
    make_staff(None)  # root, a superuser
    for event in (
        payment_event(email="ada@example.test"),
        payment_event(email=""),  # the mapping requires one: failed
        payment_event(email="bob@example.test", event_type="payment.refunded"),
    ):
        assert emit(demo.url, demo.secret, event).status_code == 202
        process_event(WebhookEvent.objects.get(event_id=event["id"]).pk)
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {
        "processed",
        "failed",
        "unhandled",
    }
    # and the long values real partners produce, which must not widen the lists
    from connectors.models import ApiCall, Connection

    ApiCall.objects.create(
        connection=Connection.objects.get(slug="sandbox-crm"),
        method="GET",
        path="/contacts/search?" + "&".join(f"filter[{i}]=some-long-value-{i}" for i in range(20)),
        status_code=422,
        error_kind="http_4xx",
        error_message="The partner said: " + "the field is not valid; " * 20,
        correlation_id="c" * 32,
    )
    WebhookEvent.objects.filter(status="failed").update(last_error="HandlerPermanentError: " * 30)
    from django.conf import settings

    keys = [demo.key, demo.secret, demo.secret.removeprefix("whsec_"), settings.SECRET_KEY]
    return Hub(live_server.url, [*keys, *settings.FERNET_KEYS])
