"""A Python source registered the way site code does: the site's customers, pushed to a CRM."""

from datetime import UTC, datetime, timedelta

from syncs.registry import sync_source, sync_target

CUSTOMERS: list[dict] = []
BASE = datetime(2026, 1, 1, tzinfo=UTC)


def customers(count: int) -> list[dict]:
    return [
        {
            "id": f"cust-{i}",
            "email": f"customer{i}@shop.test",
            "name": f"Customer {i}",
            "updated_at": (BASE + timedelta(seconds=i // 4)).isoformat(),
        }
        for i in range(count)
    ]


@sync_source("site-customers")
def site_customers(since):
    for customer in CUSTOMERS:
        if since is None or datetime.fromisoformat(customer["updated_at"]) >= since:
            yield customer


RECEIVED: list[dict] = []


@sync_target("collect")
def collect(records, job):
    """A Python target: keeps what it is given, says what it did."""
    RECEIVED.extend(records)
    return {"created": len(records)}
