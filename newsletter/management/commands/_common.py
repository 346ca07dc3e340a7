"""Helpers shared by the newsletter's management commands."""

from __future__ import annotations

from django.core.management.base import CommandError

from newsletter.models import Newsletter
from newsletter.selectors.newsletters import newsletter_default


def newsletter_from_option(slug: str | None) -> Newsletter:
    if slug:
        newsletter = Newsletter.objects.filter(slug=slug).first()
        if newsletter is None:
            known = ", ".join(Newsletter.objects.values_list("slug", flat=True)) or "none"
            raise CommandError(f"No newsletter with slug {slug!r} (known: {known}).")
        return newsletter
    try:
        return newsletter_default()
    except Newsletter.DoesNotExist as exc:
        raise CommandError(str(exc)) from None
