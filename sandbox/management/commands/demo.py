"""``manage.py demo`` (what ``make demo`` runs after the bootstrap): the sandbox partners, the
demo configuration (examples/demo.yaml), the hub (web, workers, sweeper), and a short scenario
of payments — a duplicate delivery and a burst while the CRM answers 503 included — so that the
console shows processed, deduplicated, retried and recovered events within a minute.

Ctrl-C stops everything it started.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from flows import iac
from sandbox.emitter import emit, payment_event

DEMO_FILE = Path(settings.BASE_DIR) / "examples" / "demo.yaml"
ADDRESS = "127.0.0.1:8000"


def demo_secrets(var_dir: Path) -> dict[str, str]:
    """The sandbox's demo key and signing secret, generated once into var/ (mode 0600)."""
    path = var_dir / "demo.env"
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, _, value = line.partition("=")
            if name and value:
                values[name] = value
    if not {"SANDBOX_CRM_API_KEY", "SANDBOX_PAYMENTS_WEBHOOK_SECRET"} <= set(values):
        values = {
            "SANDBOX_CRM_API_KEY": secrets.token_urlsafe(24),
            "SANDBOX_PAYMENTS_WEBHOOK_SECRET": "whsec_"
            + base64.b64encode(secrets.token_bytes(32)).decode(),
        }
        var_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return values


class Command(BaseCommand):
    help = _("Run the demo: sandbox partners, the demo flow, the hub, and a scenario of payments.")

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-scenario", action="store_true", help=_("Set up and run, emit nothing.")
        )
        parser.add_argument(
            "--addrport", default=ADDRESS, help=f"Where the hub listens (default {ADDRESS})."
        )
        parser.add_argument(
            "--recipe",
            default="",
            help=_(
                "Run one of the brief's recipes (examples/recipes/) instead of the payment demo: "
                "payment, booking, double-opt-in, support or refund."
            ),
        )

    def handle(self, *args, no_scenario: bool, addrport: str, recipe: str = "", **options):
        self.base = f"http://{addrport}"
        if not settings.SANDBOX_ENABLED:
            raise CommandError(_("The demo needs the sandbox: run it with SANDBOX_ENABLED=true."))
        from sandbox.models import SandboxState

        values = demo_secrets(Path(settings.VAR_DIR))
        os.environ.update(values)
        SandboxState.objects.update_or_create(
            service="crm",
            defaults={
                "api_key": values["SANDBOX_CRM_API_KEY"],
                "fail_next": 0,
                "error_rate": 0.0,
                "latency_ms": 0,
                "rate_limit": 0,
            },
        )
        # the demo file names the default address; the partners are this same server
        if recipe:
            from sandbox.recipes import RECIPES, prepare

            if recipe not in RECIPES:
                raise CommandError(
                    _("Unknown recipe %(name)s (known: %(known)s).")
                    % {"name": recipe, "known": ", ".join(RECIPES)}
                )
            document, self.sandbox = prepare(recipe, self.base)
            os.environ.update(self.sandbox.values)
        else:
            document = iac.load(DEMO_FILE.read_text().replace(f"http://{ADDRESS}", self.base))
        report = iac.apply_document(document)
        for line in report.changes:
            self.stdout.write(line)
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        hub = subprocess.Popen(  # noqa: S603 - our own manage.py
            [sys.executable, manage, "hub_run", addrport, "--noreload"], start_new_session=True
        )
        stopping = False

        def request_stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        try:
            if not self._wait_until_up(hub):
                raise CommandError("The hub did not start on " + self.base)
            if recipe and not no_scenario:
                self._recipe(recipe)
            elif not no_scenario:
                self._scenario(values["SANDBOX_PAYMENTS_WEBHOOK_SECRET"])
            if recipe:
                self.stdout.write(
                    self.style.SUCCESS(
                        _("\nRecipe running on %(base)s/admin/. Ctrl-C stops the demo.")
                        % {"base": self.base}
                    )
                )
            else:
                self._guide()
            while not stopping and hub.poll() is None:
                time.sleep(0.3)
        finally:
            if hub.poll() is None:
                hub.send_signal(signal.SIGTERM)  # hub_run stops its own children
                try:
                    hub.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(hub.pid, signal.SIGKILL)

    def _wait_until_up(self, hub) -> bool:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and hub.poll() is None:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.base}/admin/login/", timeout=2).status_code == 200:
                    return True
            time.sleep(0.3)
        return False

    def _scenario(self, secret: str) -> None:
        from sandbox.models import SandboxState

        url = f"{self.base}/webhooks/payments/"
        say = self.stdout.write
        customers = [
            ("ada@example.test", "Ada Lovelace"),
            ("grace@example.test", "Grace Hopper"),
            ("alan@example.test", "Alan Turing"),
        ]
        first = None
        for email, name in customers:
            event = payment_event(email=email, name=name)
            first = first or event
            say(
                _("payment %(id)s for %(email)s: %(status_code)s")
                % {
                    "id": event["id"],
                    "email": email,
                    "status_code": emit(url, secret, event).status_code,
                }
            )
        answer = emit(url, secret, first)
        say(
            _("the same payment delivered again (duplicate): %(status_code)s %(text)s")
            % {"status_code": answer.status_code, "text": answer.text}
        )
        again = payment_event(email="ada@example.test", name="Ada Lovelace", amount=990)
        status = emit(url, secret, again).status_code
        say(
            _("a second payment by ada (an upsert, no new contact): %(status)s")
            % {"status": status}
        )
        # exactly as many failures as open the connection's circuit breaker (5): the burst's
        # first attempts fail, the breaker opens, and the retries ~10 s later find the CRM back
        SandboxState.objects.filter(service="crm").update(fail_next=5)
        say(_("the CRM now fails its next 5 requests with 503; a burst of payments arrives…"))
        for index in range(5):
            event = payment_event(email=f"burst{index}@example.test", name=f"Burst Buyer{index}")
            emit(url, secret, event)
        say(_("the burst is retried once the breaker lets calls through (watch Webhook events)."))

    def _recipe(self, name: str) -> None:
        """Play the recipe's scenario (sandbox/recipes.py), as the end-to-end tests do."""
        from datetime import timedelta

        from api.models import ApiToken
        from sandbox import recipes

        say = self.stdout.write
        say(
            _("Recipe %(name)s: %(summary)s")
            % {"name": name, "summary": recipes.RECIPES[name].summary}
        )
        if name == "payment":
            event, statuses = recipes.payment_scenario(self.sandbox)
            say(
                _("payment %(id)s notified 5 times: %(statuses)s")
                % {"id": event["id"], "statuses": statuses}
            )
        elif name == "refund":
            event, statuses = recipes.refund_scenario(self.sandbox)
            say(
                _("refund of %(id)s notified twice: %(statuses)s")
                % {"id": event["id"], "statuses": statuses}
            )
        elif name == "booking":
            kept, cancelled = recipes.booking_scenario(
                self.sandbox, ahead=timedelta(hours=24, minutes=1)
            )
            say(
                _(
                    "booking %(kept)s: confirmed now, reminded in about a minute; booking "
                    "%(cancelled)s cancelled at once: confirmed, never reminded"
                )
                % {"kept": kept["id"], "cancelled": cancelled["id"]}
            )
        else:
            _row, token = ApiToken.issue(name=f"demo recipe {name}", scopes=["flows:run"])
            scenario = (
                recipes.signup_scenario if name == "double-opt-in" else recipes.support_scenario
            )
            answers = scenario(self.sandbox, token)
            say(
                _("form submissions through the REST API: %(statuses)s")
                % {"statuses": [a.status_code for a in answers]}
            )
        say(
            _(
                "See Mappings and flows > Flow runs (each run's steps) and Sandbox partner > "
                "Sandbox records."
            )
        )

    def _guide(self) -> None:
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "\nDemo running on %(base)s/admin/ — log in with the admin account.\n  "
                    "Webhooks > Webhook events: processed, duplicate refused, retried, "
                    "recovered\n  Mappings and flows > Flow runs: created / unchanged, with "
                    "their API calls\n  Connections > API calls: lookups, creates, the 503s and "
                    "the circuit breaker\n  Sandbox partner > Sandbox contacts: one contact per "
                    "customer, mapped fields only\nCtrl-C stops the demo."
                )
                % {"base": self.base}
            )
        )
