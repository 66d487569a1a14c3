"""Every answer of the REST API is JSON, errors included, with one shape:
``{"detail": "<what a person can act on>"}``, plus ``"errors": {field: [messages]}`` for an
invalid request body. Nothing Django would answer as an HTML page reaches an API client."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import exception_handler

__all__ = ["HubJSONParser", "api_exception_handler", "not_found"]


class HubJSONParser(JSONParser):
    """DRF's JSON parser, with a body nested past Python's recursion limit refused as a parse
    error (400) instead of a ``RecursionError`` (500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(
                "JSON parse error: the body is nested too deeply (about 1,000 levels)."
            ) from None


def api_exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": "The request body is too large (2.5 MB at most)."}, status=413)
    response = exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django's 500 handling, logged
    data = response.data
    if isinstance(exc, exceptions.ValidationError) and not (
        isinstance(data, dict) and set(data) == {"detail"}
    ):
        errors = data if isinstance(data, dict) else {"non_field_errors": data}
        summary = "; ".join(f"{field}: {_text(messages)}" for field, messages in errors.items())
        response.data = {"detail": f"The request is not valid: {summary}", "errors": errors}
    return response


def _text(messages) -> str:
    if isinstance(messages, dict):
        return "; ".join(f"{name}: {_text(value)}" for name, value in messages.items())
    if isinstance(messages, list):
        return " ".join(_text(m) for m in messages)
    return str(messages)


@csrf_exempt  # an API client's POST to a wrong path is a 404, not a CSRF 403
def not_found(request, *args, **kwargs):
    """Any /api/ path that names nothing (a malformed slug included)."""
    return JsonResponse({"detail": "Not found: no such API endpoint (see /api/docs/)."}, status=404)
