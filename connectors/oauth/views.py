"""The two OAuth pages of the console: start connecting an account, and the provider's
redirect back. Thin: the flow is in connectors.oauth.flow."""

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from connectors.models import Connection
from connectors.oauth.flow import FlowError, begin_authorization, complete_authorization


@staff_member_required
@require_GET
def connect_account(request, pk: int):
    if not request.user.has_perm("connectors.change_connection"):
        raise PermissionDenied
    connection = get_object_or_404(Connection.objects.select_related("oauth_app"), pk=pk)
    redirect_uri = request.build_absolute_uri(reverse("oauth:callback"))
    try:
        return HttpResponseRedirect(begin_authorization(request, connection, redirect_uri))
    except FlowError as exc:
        return render(request, "oauth/result.html", {"ok": False, "message": str(exc)}, status=400)


@staff_member_required
@require_GET
def callback(request):
    if not request.user.has_perm("connectors.change_connection"):
        raise PermissionDenied
    try:
        result = complete_authorization(request, request.GET)
    except FlowError as exc:
        return render(request, "oauth/result.html", {"ok": False, "message": str(exc)}, status=400)
    messages.success(
        request, f"Account connected: {result.account or 'the provider did not say which'}."
    )
    return HttpResponseRedirect(
        reverse("admin:connectors_connection_change", args=[result.connection.pk])
    )
