"""Handlers loaded by the real worker processes of the tests (HUB_HANDLER_MODULES).

The handler for endpoint "gh-worker" marks that it started (a file), waits on its first attempt
when asked to (so a test can kill the worker mid-processing), then creates a contact at the
partner with an idempotency key derived from the event: the effect that must happen once.
"""

import os
import time
from pathlib import Path

from connectors import hub
from webhooks.handlers import handler


@handler(endpoint="gh-worker", event_type="push")
def create_contact(event):
    markers = Path(os.environ["HUB_TEST_MARKER_DIR"])
    (markers / f"started-{event.pk}-{event.attempt}").touch()
    if event.attempt == 1 and os.environ.get("HUB_TEST_SLOW_FIRST_ATTEMPT"):
        time.sleep(60)  # the test kills the worker long before this ends
    hub.call(
        "partner",
        "POST",
        "/contacts",
        json={"delivery": event.event_id},
        idempotency_key=f"webhook-event-{event.pk}",
    )


@handler(endpoint="bulk-slow", event_type="push")
def call_the_slow_partner(event):
    """The bulkhead test: every call to this partner hangs for a while."""
    hub.call("slow-partner", "GET", f"/records/{event.event_id}")


@handler(endpoint="bulk-fast", event_type="push")
def call_the_fast_partner(event):
    hub.call("fast-partner", "GET", f"/records/{event.event_id}")
