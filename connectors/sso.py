"""Staff single sign-on for the console (social-auth-app-django): pipeline steps.

Only addresses in ``HUB_SSO_ALLOWED_DOMAINS`` get in. A first sign-in creates a staff user in the
Operators group, never a superuser: an integration admin raises the role by hand.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.models import Group
from social_core.exceptions import AuthPolicyError

from connectors.roles import OPERATORS

logger = logging.getLogger("connectors.sso")

__all__ = ["allowed_domain_only", "make_operator"]


def allowed_domain_only(backend, details, *args, **kwargs):
    """Refuse anyone whose email is not in an allowed domain (checked before any user exists)."""
    email = (details.get("email") or "").strip().lower()
    allowed = {d.strip().lower().lstrip("@") for d in settings.HUB_SSO_ALLOWED_DOMAINS if d}
    domain = email.rpartition("@")[2] if "@" in email else ""
    if not domain or domain not in allowed:
        logger.warning(
            "SSO refused for %s via %s: domain not allowed", email or "no email", backend.name
        )
        raise AuthPolicyError(backend, code="authentication_disallowed", stage="pipeline")


def make_operator(backend, user=None, is_new=False, *args, **kwargs):
    """Newly created SSO users are staff Operators; existing users keep their roles."""
    if user is None:
        return
    if is_new:
        user.is_staff = True
        user.is_superuser = False
        user.set_unusable_password()
        user.save(update_fields=["is_staff", "is_superuser", "password"])
        user.groups.add(Group.objects.get(name=OPERATORS))
        logger.info("SSO created operator %s via %s", user.get_username(), backend.name)
