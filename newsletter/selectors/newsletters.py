"""Reads of the newsletter itself."""

from __future__ import annotations

from newsletter.models import Newsletter


def newsletter_default() -> Newsletter:
    """Return the newsletter the site serves by default (the first active one)."""
    newsletter = Newsletter.objects.filter(is_active=True).order_by("pk").first()
    if newsletter is None:
        raise Newsletter.DoesNotExist("No active newsletter: create one in admin.")
    return newsletter
