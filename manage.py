#!/usr/bin/env python
"""Django's command-line utility for the integration hub."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "integrations_site.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as error:
        # a setting to fix is one line that says what to set, not a traceback
        hint = "" if os.environ.get("DEBUG") else " (on a development machine: DEBUG=true)"
        sys.exit(f"manage.py: {error}{hint}")


if __name__ == "__main__":
    main()
