"""Filters for the admin reports."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext

register = template.Library()


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
    """Show a rate as a percentage, "n/a" when there is nothing to divide by."""
    if value is None:
        return "n/a"
    return f"{value * 100:.{int(digits)}f} %"


@register.filter
def tracked_percent(value: float | None, tracked: bool) -> str:
    """Show an open or click rate, or "not tracked" when no such event can be reported."""
    return percent(value) if tracked else gettext("not tracked")


@register.filter
def share(part: int, whole: int) -> float:
    """Return part / whole as a percentage for a CSS width (0 when whole is 0)."""
    return round(100 * part / whole, 1) if whole else 0.0
