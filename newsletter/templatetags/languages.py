"""The language switcher and hreflang alternates of reader pages (issue 14)."""

from __future__ import annotations

from django import template
from django.conf import settings
from django.urls import translate_url
from django.utils import translation

register = template.Library()


@register.simple_tag(takes_context=True)
def page_languages(context) -> list[dict]:
    """Return this page in every language: code, own name, absolute URL, whether current."""
    request = context.get("request")
    if request is None:
        return []
    current = translation.get_language()
    query = request.META.get("QUERY_STRING", "")
    pages = []
    for code, name in settings.LANGUAGES:
        path = translate_url(request.path, code)
        pages.append(
            {
                "code": code,
                "name": name,
                "url": settings.SITE_URL + path + (f"?{query}" if query else ""),
                "current": code == current,
            }
        )
    return pages
