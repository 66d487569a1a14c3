from django import template

from monitoring.services.dashboard import dashboard

register = template.Library()


@register.simple_tag
def hub_dashboard():
    """The dashboard's figures, for the console's home page."""
    return dashboard()
