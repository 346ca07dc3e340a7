"""{% newsroom_dashboard %}: the admin home's dashboard for the signed-in user."""

from __future__ import annotations

from django import template

from newsletter.admin.dashboard import dashboard_for

register = template.Library()


@register.inclusion_tag("admin/newsletter/dashboard.html", takes_context=True)
def newsroom_dashboard(context: template.Context) -> dict:
    return {"dashboard": dashboard_for(user=context["request"].user)}
