"""A monitoring pass in a loop, for the ingest benchmark's "monitoring on" rounds: every
``interval`` seconds for ``seconds`` (12 times the schedule's rate at 5 s), then it stops."""

from __future__ import annotations

import sys
import time


def main() -> None:
    import django

    django.setup()
    from monitoring.rules.hub import beat
    from monitoring.services.incidents import run_pass

    seconds, interval = float(sys.argv[1]), float(sys.argv[2])
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        beat()
        run_pass()
        time.sleep(interval)


if __name__ == "__main__":
    main()
