"""Template filters for the plain-text part of emails."""

from __future__ import annotations

from django import template

from newsletter.text_wrap import wrap_text as _wrap_text

register = template.Library()


@register.filter(is_safe=False)
def wrap_text(value: object, width: int = 72) -> str:
    """Wrap at `width` columns, breaking Chinese between characters and never inside a URL."""
    return _wrap_text(str(value), int(width))
