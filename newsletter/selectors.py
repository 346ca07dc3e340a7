"""Reads for the newsletter: what pages, emails and commands show."""

from __future__ import annotations

from django.db.models import QuerySet

from newsletter.models import Issue, Newsletter


def newsletter_default() -> Newsletter:
    """Return the newsletter the site serves by default (the first active one)."""
    newsletter = Newsletter.objects.filter(is_active=True).order_by("pk").first()
    if newsletter is None:
        raise Newsletter.DoesNotExist("No active newsletter: create one in admin.")
    return newsletter


def issues_published(*, newsletter: Newsletter) -> QuerySet[Issue]:
    """Return the issues readers may see on the web: sent ones only, newest first."""
    return Issue.objects.filter(newsletter=newsletter, status=Issue.Status.SENT).order_by("-number")


def issue_counts(*, issue: Issue) -> dict[str, int]:
    """Return the number of deliveries in each status."""
    from django.db.models import Count

    counts = {
        row["status"]: row["n"] for row in issue.deliveries.values("status").annotate(n=Count("id"))
    }
    return counts
