"""The console's "works in test, not in prod" page."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

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
            "title": _("Works in test, not in prod? %(sandbox)s against %(production)s")
            % {"sandbox": sandbox.slug, "production": production.slug},
            "sandbox": sandbox,
            "production": production,
            "differences": compare(sandbox, production),
        },
    )


GDPR_DESK = "connectors.use_gdpr_desk"


def gdpr_desk_view(request):
    """Find one person, export what the hub holds about them, erase it (with a receipt).

    The identifier is posted, never put in a URL, so it stays out of access logs and browser
    history; the page is for holders of the desk's own permission only."""
    from django.http import HttpResponse

    from governance import gdpr

    if not request.user.has_perm(GDPR_DESK):
        raise PermissionDenied
    context = {
        **admin.site.each_context(request),
        "title": "GDPR desk: one person's data",
        "kinds": gdpr.KINDS.items(),
        "kind": request.POST.get("kind", "email"),
        "value": "",
    }
    if request.method != "POST":
        return TemplateResponse(request, "governance/gdpr.html", context)
    try:
        subject = gdpr.Subject.parse(context["kind"], request.POST.get("value", ""))
    except ValueError as error:
        return TemplateResponse(request, "governance/gdpr.html", {**context, "error": error})
    context["value"] = subject.value
    action = request.POST.get("action", "find")
    if action == "erase":
        if request.POST.get("confirm") != "yes":
            context["error"] = _("Tick the confirmation to erase: it cannot be undone.")
        else:
            receipt, counts = gdpr.erase(subject, actor=request.user)
            context |= {"receipt": receipt, "erased": counts, "erased_total": sum(counts.values())}
    results = gdpr.find(subject)
    if action == "export":
        counts = {key: len(found) for key, found in results.items()}
        entry = gdpr.record_export(subject, counts, actor=request.user)
        response = HttpResponse(
            gdpr.export_document(subject, results), content_type="application/json"
        )
        response["Content-Disposition"] = f'attachment; filename="personal-data-{entry}.json"'
        response["Cache-Control"] = "no-store"
        return response
    places = {place.key: place for place in gdpr.PLACES}
    context["places"] = [
        (places[key].label, len(found), [f.place.describe(f.row) for f in found[:20]])
        for key, found in results.items()
    ]
    context["total"] = sum(len(found) for found in results.values())
    response = TemplateResponse(request, "governance/gdpr.html", context)
    response["Cache-Control"] = "no-store"
    return response


DELIVERABLE_TITLES = {
    "flow-diagram.md": _("Flow diagram"),
    "mapping-sheet.md": _("Field mapping sheet"),
    "secrets.md": _("Secrets inventory and policy"),
    "troubleshooting.md": _("Troubleshooting guide"),
    "processing-register.md": _("Processing register (GDPR art. 30)"),
}
# the secrets inventory names credentials (fingerprints, never values): for who may see them
DELIVERABLE_PERMISSIONS = {"secrets.md": "connectors.view_credential"}


def _may_read(user, name: str) -> bool:
    return user.has_perm("connectors.view_connection") and user.has_perm(
        DELIVERABLE_PERMISSIONS.get(name, "connectors.view_connection")
    )


def deliverables_view(request, name: str = ""):
    """The deliverables, rendered from the live configuration (Markdown with raw HTML escaped;
    the flow diagram drawn by the vendored Mermaid), each downloadable as its file."""
    from django.http import Http404, HttpResponse

    from governance.deliverables import DELIVERABLES, to_html

    readable = [n for n in DELIVERABLES if _may_read(request.user, n)]
    if not readable:
        raise PermissionDenied
    if name and name not in DELIVERABLES:
        raise Http404("no such deliverable")
    if name and name not in readable:
        raise PermissionDenied
    name = name or readable[0]
    text = DELIVERABLES[name]()
    if request.GET.get("download"):
        response = HttpResponse(text, content_type="text/markdown; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    return TemplateResponse(
        request,
        "governance/deliverables.html",
        {
            **admin.site.each_context(request),
            "title": _("Deliverables: %(name)s") % {"name": DELIVERABLE_TITLES[name]},
            "current": name,
            "tabs": [(n, DELIVERABLE_TITLES[n]) for n in readable],
            "html": to_html(text),
        },
    )
