"""The console's "works in test, not in prod" page."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse

from connectors.models import Connection
from governance.diff import compare


def diff_view(request):
    if not request.user.has_perm("connectors.view_connection"):
        raise PermissionDenied
    sandbox = get_object_or_404(Connection, slug=request.GET.get("sandbox", ""))
    production = get_object_or_404(Connection, slug=request.GET.get("production", ""))
    return TemplateResponse(
        request,
        "governance/diff.html",
        {
            **admin.site.each_context(request),
            "title": f"Works in test, not in prod? {sandbox.slug} against {production.slug}",
            "sandbox": sandbox,
            "production": production,
            "differences": compare(sandbox, production),
        },
    )
