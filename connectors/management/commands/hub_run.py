"""``manage.py hub_run``: the web server, the worker cluster and the webhook sweeper together,
in the foreground.

Each child runs in its own session so that Ctrl-C reaches only this process, which then stops
both children (SIGTERM to each process group, SIGKILL after a grace period) and waits for them:
nothing is left running. If either child exits, the other is stopped too.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

GRACE_SECONDS = 30


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


class Command(BaseCommand):
    help = _("Run the web server and the django-q2 cluster together; Ctrl-C stops both.")

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument(
            "--noreload", action="store_true", help=_("Do not restart the web server on changes.")
        )

    def handle(self, *args, addrport, noreload, **options):
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        web = [sys.executable, manage, "runserver", addrport]
        if noreload:
            web.append("--noreload")
        commands = {
            "web": web,
            "worker": [sys.executable, manage, "qcluster"],
            "sweeper": [sys.executable, manage, "webhooks", "sweep", "--loop"],
        }
        children = {
            name: subprocess.Popen(argv, start_new_session=True)  # noqa: S603
            for name, argv in commands.items()
        }
        self.stdout.write(
            _("Web server on http://%(addrport)s/ and workers started. Ctrl-C stops.")
            % {"addrport": addrport}
        )
        stopping = False

        def request_stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        exit_code = 0
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    self.stderr.write(
                        _("%(name)s exited with status %(returncode)s; stopping.")
                        % {"name": name, "returncode": child.returncode}
                    )
                    exit_code = child.returncode or 1
                    stopping = True
            time.sleep(0.2)
        self._stop(children)
        if exit_code:
            sys.exit(exit_code)

    def _stop(self, children):
        for name, child in children.items():
            if name in ("web", "sweeper"):
                # The whole group: runserver's reloader has a child of its own.
                _signal_group(child.pid, signal.SIGTERM)
            elif child.poll() is None:
                # Only the cluster's main process: it stops its sentinel and workers itself,
                # letting running tasks finish; signalling them directly confuses that.
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for name, child in children.items():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(
                    _("%(name)s did not stop in %(seconds)ss; killing it.")
                    % {"name": name, "seconds": GRACE_SECONDS}
                )
                _signal_group(child.pid, signal.SIGKILL)
                child.wait()
            _signal_group(child.pid, signal.SIGKILL)  # anything the child left behind
        self.stdout.write(_("Stopped."))
