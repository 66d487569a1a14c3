"""A monitoring pass in a loop, for the ingest benchmark's "monitoring on" rounds: every
``interval`` seconds (12 times the schedule's rate at 5 s) while the file ``flag`` exists,
idle otherwise; it stops by itself after ``seconds``. One process for the whole benchmark, as
in production the pass runs in a worker that is already up."""

from __future__ import annotations

import sys
import time


def main() -> None:
    import django

    django.setup()
    from pathlib import Path

    from monitoring.rules.hub import beat
    from monitoring.services.incidents import run_pass

    seconds, interval, flag = float(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3])
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if flag.exists():
            beat()
            run_pass()
            time.sleep(interval)
        else:
            time.sleep(0.1)


if __name__ == "__main__":
    main()
