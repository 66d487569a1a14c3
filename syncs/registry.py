"""Python sources and targets that site code registers for sync jobs.

    from syncs.registry import sync_source, sync_target

    @sync_source("shop-orders")
    def orders(since):            # since: a datetime, or None for everything
        orders = Order.objects.order_by("updated_at", "pk")
        for order in orders.filter(updated_at__gte=since) if since else orders:
            yield {"id": order.pk, "updated_at": order.updated_at.isoformat(), ...}

    @sync_target("accounting-export")
    def export(records, job):     # a page of mapped records (dicts with their "_id")
        ...

A source yields records (dicts) changed since ``since`` (inclusive), in order of change. The
runner pages them, drops those it already committed (same time, same id), and advances the
cursor after each committed page. Modules that register them are listed in
``HUB_HANDLER_MODULES`` (imported at start-up).
"""

from __future__ import annotations

from connectors.registry import Registry

__all__ = ["sources", "sync_source", "sync_target", "targets"]

sources: Registry = Registry("sync source")
targets: Registry = Registry("sync target")


def sync_source(name: str):
    def register(func):
        sources.add(name, func)
        return func

    return register


def sync_target(name: str):
    def register(func):
        targets.add(name, func)
        return func

    return register
