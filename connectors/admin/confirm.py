"""A confirmation page for console actions that change remote state or cannot be undone."""

from __future__ import annotations

from django.template.response import TemplateResponse


def confirmed(request) -> bool:
    """True when the action's form came back from its confirmation page."""
    return request.POST.get("confirmed") == "yes"


def confirmation(model_admin, request, queryset, *, action, title, explanation, button, items):
    """The page that asks before ``action`` runs on ``queryset`` (nothing is done yet)."""
    return TemplateResponse(
        request,
        "admin/confirm_action.html",
        {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.opts,
            "title": title,
            "explanation": explanation,
            "button": button,
            "items": items,
            "action": action,
            "selected": [obj.pk for obj in queryset],
            "back": request.get_full_path(),
        },
    )
