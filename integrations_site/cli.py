"""``integrations-hub``: ``manage.py`` for an installed hub (``pip install`` of the wheel puts it
on the PATH), e.g. ``integrations-hub migrate``, ``integrations-hub qcluster``."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "integrations_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line([os.path.basename(sys.argv[0]), *sys.argv[1:]])
