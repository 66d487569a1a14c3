"""``manage.py hub_bootstrap``: what ``make run`` does before starting: migrate, cache table, and
(in DEBUG, the very first time) an admin account with a random password printed once."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _


class Command(BaseCommand):
    help = _("Apply migrations, create the cache table and, in DEBUG on a new database, an admin.")

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write(_("Database migrated."))
        call_command("createcachetable", verbosity=0)
        if not settings.DEBUG:
            return
        user_model = get_user_model()
        if user_model.objects.exists():
            return
        password = secrets.token_urlsafe(15)
        user_model.objects.create_superuser("admin", "", password)
        # Printed once, on the terminal of the person who ran `make run`, never logged.
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "\nCreated the first admin account (DEBUG only, shown this once):\n  user:   "
                    "  admin\n  password: %(password)s\nChange it with: .venv/bin/python "
                    "manage.py changepassword admin\n"
                )
                % {"password": password}
            )
        )
