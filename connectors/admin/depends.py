"""Forms that show only the fields that apply: a field of the connection form that only one
auth method uses (the basic user name, the OAuth app, the scopes…) shows only when that
method is chosen; the same for a flow's trigger. Nothing is removed from the form (a hidden
field keeps its value); the page just does not ask about what does not apply."""

from __future__ import annotations

from django import forms


class DependentFieldsMixin:
    """``field_depends = ("auth_method", {"basic_username": ["basic"], …})``: the selector
    field, and for each dependent field (or read-only panel) the values it applies to."""

    field_depends: tuple[str, dict[str, list[str]]] | None = None

    @property
    def media(self):
        return super().media + forms.Media(js=["hub/depends.js"])

    def render_change_form(self, request, context, *args, **kwargs):
        if self.field_depends:
            selector, fields = self.field_depends
            context["field_depends"] = {"selector": selector, "fields": fields}
        return super().render_change_form(request, context, *args, **kwargs)
