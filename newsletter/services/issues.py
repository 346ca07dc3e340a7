"""Writes for the newsletter: compiling issues, starting a send, test sends, readers.

Each function is keyword-only and does one thing; views, admin actions, commands and
tasks call these and present the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from articles.models import Article
from newsletter.digest import digest_build, digest_render
from newsletter.models import Issue, IssueItem, Newsletter, Subscriber
from newsletter.sending.messages import digest_message
from newsletter.sending.snapshot import batch_ranges, deliveries_snapshot
from newsletter.weeks import IsoWeek, current_week, issue_window


class IssueNotSendable(Exception):
    """The issue cannot start sending; the message says why."""


@dataclass
class CompileResult:
    issue: Issue | None
    created: bool = False
    added: int = 0
    message: str = ""


def _articles_for(
    newsletter: Newsletter, start: datetime, end: datetime, *, exclude_issue: Issue | None
):
    articles = Article.objects.filter(
        status=Article.Status.PUBLISHED, published_at__gte=start, published_at__lt=end
    ).select_related("category")
    offered = list(newsletter.categories.values_list("pk", flat=True))
    if offered:
        articles = articles.filter(category__in=offered)
    carried = IssueItem.objects.filter(issue__newsletter=newsletter, removed=False).exclude(
        issue__status=Issue.Status.CANCELLED
    )
    if exclude_issue is not None:
        carried = carried.exclude(issue=exclude_issue)
    return articles.exclude(pk__in=carried.values("article_id")).order_by(
        "-priority", "-published_at", "id"
    )


def issue_compile(
    *, newsletter: Newsletter, week: IsoWeek | None = None, now: datetime | None = None
) -> CompileResult:
    """Draft the issue of `week` (default: the current one) from its window's articles.

    Only published articles that no earlier issue carried are taken, in sections by
    category, ranked by editor priority then date. Re-compiling a draft keeps what
    editors did (order, pins, removals, abstracts) and appends what is new. An empty
    week makes no issue.
    """
    now = now or timezone.now()
    week = week or current_week(newsletter, now)
    start, end = issue_window(newsletter, week)
    with transaction.atomic():
        issue = (
            Issue.objects.select_for_update()
            .filter(newsletter=newsletter, week=str(week))
            .exclude(status=Issue.Status.CANCELLED)
            .first()
        )
        if issue is not None and issue.status != Issue.Status.DRAFT:
            return CompileResult(
                issue=issue,
                message=f"Issue No. {issue.number} for {week} is {issue.status}; left as it is.",
            )
        articles = list(_articles_for(newsletter, start, min(end, now), exclude_issue=issue))
        if issue is not None:
            present = set(issue.items.values_list("article_id", flat=True))
            articles = [a for a in articles if a.pk not in present]
        if issue is None and not articles:
            return CompileResult(
                issue=None, message=f"No new published articles for {week}; no issue made."
            )
        created = issue is None
        if created:
            number = (
                Issue.objects.filter(newsletter=newsletter).aggregate(n=Max("number"))["n"] or 0
            ) + 1
            issue = Issue.objects.create(
                newsletter=newsletter,
                number=number,
                week=str(week),
                title=f"{newsletter.name} No. {number}",
                window_start=start,
                window_end=end,
                utm_source="newsletter",
                utm_medium="email",
                utm_campaign=f"{newsletter.slug}-{number}",
            )
        last = issue.items.aggregate(p=Max("position"))["p"] or 0
        IssueItem.objects.bulk_create(
            [
                IssueItem(
                    issue=issue, article=article, section=article.category, position=last + index
                )
                for index, article in enumerate(articles, start=1)
            ]
        )
    verb = "Drafted" if created else "Updated"
    return CompileResult(
        issue=issue,
        created=created,
        added=len(articles),
        message=f"{verb} No. {issue.number} for {week}: {len(articles)} new articles.",
    )


def issue_start_sending(*, issue: Issue, now: datetime | None = None) -> int:
    """Claim the issue for sending, snapshot its readers and enqueue the batches.

    A conditional UPDATE claims the issue: of two editors pressing "send" at once,
    one changes the row and the other sees zero rows changed and gets an error.
    Returns the number of readers queued.
    """
    from newsletter.tasks import send_batch  # tasks import services; import here to avoid a cycle

    now = now or timezone.now()
    if not IssueItem.objects.filter(issue=issue, removed=False).exists():
        raise IssueNotSendable(f"No. {issue.number} has no articles; add some before sending.")
    with transaction.atomic():
        claimed = Issue.objects.filter(
            pk=issue.pk, status__in=[Issue.Status.DRAFT, Issue.Status.SCHEDULED]
        ).update(status=Issue.Status.SENDING, send_started_at=now)
        if not claimed:
            issue.refresh_from_db(fields=["status"])
            raise IssueNotSendable(
                f"No. {issue.number} is {issue.get_status_display().lower()}; it cannot be sent again."
            )
        queued = deliveries_snapshot(issue=issue, now=now)
        Issue.objects.filter(pk=issue.pk).update(recipients_count=queued)
        ranges = list(batch_ranges(issue=issue, size=settings.NEWSLETTER_BATCH_SIZE))
        for first_id, last_id in ranges:
            transaction.on_commit(lambda f=first_id, l=last_id: send_batch.delay(issue.pk, f, l))  # noqa: E741
        if not ranges:
            transaction.on_commit(lambda: send_batch.delay(issue.pk, 0, 0))
    issue.refresh_from_db()
    return queued


def issue_send_test(*, issue: Issue, to: list[str]) -> int:
    """Send the full issue, subject marked [TEST], to `to`; no Delivery is written."""
    digest = digest_build(issue)
    rendered = digest_render(digest, digest.section_keys, test=True)
    probe = Subscriber(pk=0, newsletter=issue.newsletter, email="", token_secret="test-send")
    sent = 0
    for address in to:
        probe.email = address
        message = digest_message(rendered, issue=issue, subscriber=probe, delivery_id=0)
        sent += message.send()
    return sent
