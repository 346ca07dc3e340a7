"""The admin home's dashboard: what a newsroom looks at first, each figure linking through.

Readers by status with the week's change, the next issue to go out, the last issue's
results, open reader tickets and feed sources in trouble. The inbox's tickets are found
through the app registry (inbox imports newsletter, so no import circle spans two
apps), and a tile whose model the user may not view is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.apps import apps
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, OuterRef, Q, Subquery
from django.urls import reverse
from django.utils import timezone

from articles.models import FeedFetch, FeedSource
from newsletter.models import Issue, Subscriber
from newsletter.selectors.metrics import IssueRow, last_issue_row
from newsletter.selectors.newsletters import newsletter_default


@dataclass(frozen=True)
class StatusTile:
    status: str
    label: str
    count: int
    change: int  # readers who reached this status in the last seven days (active: net)
    url: str


@dataclass(frozen=True)
class Dashboard:
    readers: list[StatusTile]
    next_issue: Issue | None
    draft: Issue | None
    last_issue: IssueRow | None
    open_tickets: int | None
    new_tickets: int | None
    tickets_url: str
    feed_errors: list[tuple[str, str, str]] | None  # (name, error, admin url)


def _reader_tiles(*, now: datetime) -> list[StatusTile]:
    week_ago = now - timedelta(days=7)
    Status = Subscriber.Status
    rows = Subscriber.objects.values("status").annotate(
        n=Count("id"),
        confirmed=Count("id", filter=Q(confirmed_at__gte=week_ago)),
        joined=Count("id", filter=Q(created_at__gte=week_ago)),
        left=Count("id", filter=Q(unsubscribed_at__gte=week_ago)),
    )
    by_status = {row["status"]: row for row in rows}
    gone = sum(
        by_status.get(s, {}).get("left", 0)
        for s in (Status.UNSUBSCRIBED, Status.BOUNCED, Status.COMPLAINED, Status.ERASED)
    )
    changelist = reverse("admin:newsletter_subscriber_changelist")
    tiles = []
    for status in (
        Status.ACTIVE,
        Status.PENDING,
        Status.UNSUBSCRIBED,
        Status.BOUNCED,
        Status.COMPLAINED,
    ):
        row = by_status.get(status, {})
        if status == Status.ACTIVE:
            change = row.get("confirmed", 0) - gone
        elif status == Status.PENDING:
            change = row.get("joined", 0)
        else:
            change = row.get("left", 0)
        tiles.append(
            StatusTile(
                status=status,
                label=str(status.label),
                count=row.get("n", 0),
                change=change,
                url=f"{changelist}?{urlencode({'status__exact': status})}",
            )
        )
    return tiles


def _feed_errors(user: AbstractBaseUser) -> list[tuple[str, str, str]] | None:
    """Return active feed sources whose latest fetch failed: (name, error, admin URL)."""
    if not user.has_perm("articles.view_feedsource"):
        return None
    latest = FeedFetch.objects.filter(source=OuterRef("pk")).order_by("-at", "-id")
    failing = (
        FeedSource.objects.filter(is_active=True)
        .annotate(last_error=Subquery(latest.values("error")[:1]))
        .exclude(last_error="")
        .exclude(last_error__isnull=True)
        .order_by("name")[:10]
    )
    return [
        (
            source.name,
            source.last_error[:200],
            reverse("admin:articles_feedsource_change", args=[source.pk]),
        )
        for source in failing
    ]


def dashboard_for(*, user: AbstractBaseUser, now: datetime | None = None) -> Dashboard:
    """Return what the admin home shows this user."""
    now = now or timezone.now()
    newsletter = newsletter_default()
    can_issues = user.has_perm("newsletter.view_issue")
    issues = Issue.objects.filter(newsletter=newsletter) if can_issues and newsletter else None
    tickets = None
    Ticket = apps.get_model("inbox", "Ticket") if apps.is_installed("inbox") else None
    if Ticket is not None and user.has_perm("inbox.view_ticket"):
        tickets = Ticket.objects.exclude(status="closed").aggregate(
            open=Count("id"), new=Count("id", filter=Q(status="new"))
        )
    return Dashboard(
        readers=_reader_tiles(now=now) if user.has_perm("newsletter.view_subscriber") else [],
        next_issue=issues.filter(status=Issue.Status.SCHEDULED).order_by("scheduled_at").first()
        if issues is not None
        else None,
        draft=issues.filter(status=Issue.Status.DRAFT).order_by("-number").first()
        if issues is not None
        else None,
        last_issue=last_issue_row(newsletter=newsletter) if issues is not None else None,
        open_tickets=tickets["open"] if tickets else None,
        new_tickets=tickets["new"] if tickets else None,
        tickets_url=reverse("admin:inbox_ticket_changelist") + "?status__exact=new"
        if tickets is not None
        else "",
        feed_errors=_feed_errors(user),
    )
