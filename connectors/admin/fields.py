"""Form fields for the console's structured settings: scopes as a list a person types (one per
line, or separated by spaces or commas), not a JSON box; and JSON boxes that show an example
of what they take."""

from __future__ import annotations

import json
import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils.text import capfirst, format_lazy
from django.utils.translation import gettext_lazy as _

__all__ = ["ScopesField", "StructuredFieldsMixin"]

SCOPE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # RFC 6749 scope-token characters


class ScopesField(forms.CharField):
    """A list of OAuth scopes or API permissions: ``contacts.read contacts.write`` or one per
    line (a JSON list is understood too); stored as a JSON list of strings. A wrong entry is
    named in the error."""

    widget = forms.Textarea(
        attrs={"rows": 2, "cols": 60, "placeholder": "contacts.read\ncontacts.write"}
    )

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return "\n".join(str(v) for v in value)
        return value

    def to_python(self, value):
        text = (super().to_python(value) or "").strip()
        if text.startswith("["):  # a JSON list, as the files and older forms write them
            try:
                parsed = json.loads(text)
            except ValueError:
                raise ValidationError(
                    _("Not a JSON list: type the scopes one per line instead.")
                ) from None
            if not isinstance(parsed, list) or not all(isinstance(s, str) for s in parsed):
                raise ValidationError(_("A JSON list of scopes holds strings only."))
            text = "\n".join(parsed)
        scopes = [s for s in re.split(r"[\s,]+", text) if s]
        for scope in scopes:
            if not SCOPE.match(scope):
                raise ValidationError(
                    _(
                        '"%(scope)s" is not a scope: letters, digits and punctuation, no quotes '
                        "or backslashes (one per line, or separated by spaces or commas)."
                    )
                    % {"scope": scope}
                )
        return list(dict.fromkeys(scopes))  # in order, each once


class StructuredFieldsMixin:
    """On a ModelAdmin or an inline: ``scope_fields`` are edited as :class:`ScopesField`;
    ``json_examples`` maps a JSON field to an example shown in its empty box (its placeholder;
    the field's help text says the rest)."""

    scope_fields: tuple[str, ...] = ()
    json_examples: dict[str, str] = {}

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name in self.scope_fields:
            return ScopesField(
                label=capfirst(db_field.verbose_name),
                help_text=format_lazy(
                    "{} {}", db_field.help_text, _("One per line, or separated by spaces.")
                ),
            )
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        example = self.json_examples.get(db_field.name)
        if field is not None and example:
            field.widget.attrs.setdefault("placeholder", example)
        return field
