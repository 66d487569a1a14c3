"""Error pages of the console that say what happened and what to do, in its look."""

from __future__ import annotations

from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils.translation import gettext


def forbidden(request, exception=None):
    """403: which account, which groups, why, and the way back (never a bare "Forbidden")."""
    user = getattr(request, "user", None)
    groups = (
        sorted(user.groups.values_list("name", flat=True))
        if user is not None and user.is_authenticated
        else []
    )
    reason = str(exception or "").strip()
    response = TemplateResponse(
        request,
        "403.html",
        {
            **(admin.site.each_context(request) if user is not None else {}),
            "title": gettext("You cannot open this page"),
            "groups": groups,
            "reason": reason,
        },
        status=403,
    )
    return response.render()
