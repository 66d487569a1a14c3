"""``{% load hub_status %}{% status "health" state.health state.label state.reason %}``: the
console's one badge for a status (connectors/admin/status.py)."""

from django import template

from connectors.admin.status import http_status as _http_status
from connectors.admin.status import status as _status

register = template.Library()


@register.simple_tag
def status(kind, value, label, title=""):
    return _status(kind, value, label, title)


@register.simple_tag
def http_status(code):
    return _http_status(code)
