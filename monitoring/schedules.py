"""The monitoring pass and the heartbeat, every minute; compaction of rollups, hourly."""

from __future__ import annotations

from connectors.periodic import every


def ensure(**kwargs) -> None:
    every(1, "monitoring: heartbeat", "monitoring.tasks.heartbeat")
    every(1, "monitoring: rollups, rules, incidents, notifications", "monitoring.tasks.run_pass")
    every(60, "monitoring: compact and purge rollups", "monitoring.tasks.compact")
    every(24 * 60, "monitoring: daily digest", "monitoring.tasks.digest")
