"""Writes for issues: compile, schedule, hold, cancel, start sending, finish, test sends.

Each function is keyword-only and does one thing; views, admin actions, commands and
tasks call these and present the result. Every change of an issue's status is here,
each a conditional UPDATE that names the status it expects, so two people (or a
person and the scheduler, or two workers) acting at once never both succeed.
Starting a send hands the work to the pipeline's fan-out (sending/fanout.py), which
enqueues the tasks: services enqueue, tasks call services.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from articles.models import Article
from newsletter.digest import digest_build, digest_render
from newsletter.models import Delivery, EmptyWeek, Issue, IssueItem, Newsletter, Subscriber
from newsletter.selectors.issues import issue_digest_size
from newsletter.sending.fanout import fan_out_start
from newsletter.sending.messages import digest_message
from newsletter.services.editors import (
    editors_notify_drafted,
    editors_notify_empty_week,
    editors_notify_not_sent,
)
from newsletter.weeks import IsoWeek, current_week, issue_window, send_moment

Status = Issue.Status


class IssueActionError(Exception):
    """The action cannot be done to the issue in its present state; the message says why."""


class IssueNotSendable(IssueActionError):
    """The issue cannot start sending; the message says why."""


def _refused(issue: Issue, action: str) -> str:
    """Return why `action` is refused, from the issue's status as it is in the database now."""
    issue.refresh_from_db(fields=["status", "scheduled_at"])
    status = Status(issue.status)
    reason = {
        Status.DRAFT: "is a draft, not scheduled",
        Status.SCHEDULED: "is scheduled for a later time",
        Status.SENDING: "is sending",
        Status.SENT: "is sent",
        Status.CANCELLED: "was cancelled",
    }[status]
    again = " again" if action == "sent" and status in (Status.SENDING, Status.SENT) else ""
    return f"No. {issue.number} {reason}; it cannot be {action}{again}."


def _transition(issue: Issue, *, allowed: list[str], action: str, **values) -> Issue:
    """Write `values` only if the issue's status is still one of `allowed` (a conditional
    UPDATE); otherwise say why `action` is refused and change nothing."""
    if not Issue.objects.filter(pk=issue.pk, status__in=allowed).update(**values):
        raise IssueActionError(_refused(issue, action))
    issue.refresh_from_db()
    return issue


def _require_items(issue: Issue, action: str) -> None:
    if not IssueItem.objects.filter(issue=issue, removed=False).exists():
        raise IssueNotSendable(
            f"No. {issue.number} has no articles; add some before it is {action}."
        )
    _require_unclipped(issue, action)


def _require_unclipped(issue: Issue, action: str) -> None:
    """Refuse an issue whose largest variant Gmail would clip, hiding the unsubscribe link."""
    size = issue_digest_size(issue=issue)
    if size.over:
        raise IssueNotSendable(
            f"No. {issue.number} cannot be {action}: the variant with {size.variant} is "
            f"{size.kb} KB of HTML, {size.over_kb} KB over the {size.limit_kb} KB limit "
            f"(Gmail clips past about 102 KB and hides the unsubscribe link). Lower the "
            f"articles per section or remove articles."
        )


@dataclass
class CompileResult:
    issue: Issue | None
    created: bool = False
    added: int = 0
    message: str = ""


def _previous_issue(newsletter: Newsletter, *, before: Issue | None) -> Issue | None:
    """Return the newsletter's latest issue before `before` (all when None), not cancelled."""
    issues = Issue.objects.filter(newsletter=newsletter).exclude(status=Status.CANCELLED)
    if before is not None:
        issues = issues.filter(number__lt=before.number)
    return issues.order_by("-number").first()


def _articles_for(
    newsletter: Newsletter,
    start: datetime,
    end: datetime,
    *,
    exclude_issue: Issue | None,
    previous: Issue | None,
):
    """Return the published articles of [start, end) that no issue of `newsletter` carries.

    An article the feed delivered after the previous issue's cutoff, though dated
    inside that issue's span (a feed fetched a few minutes late), comes too: it arrived
    too late for that issue and would otherwise be in none.
    """
    in_window = Q(published_at__gte=start, published_at__lt=end)
    if previous is not None:
        in_window |= Q(
            created_at__gte=start, published_at__gte=previous.window_start, published_at__lt=end
        )
    articles = Article.objects.filter(in_window, status=Article.Status.PUBLISHED).select_related(
        "category"
    )
    offered = list(newsletter.categories.values_list("pk", flat=True))
    if offered:
        # A category not yet turned on is in nobody's list: its articles are "More news".
        articles = articles.filter(Q(category__in=offered) | Q(category__enabled=False))
    carried = IssueItem.objects.filter(issue__newsletter=newsletter, removed=False).exclude(
        issue__status=Issue.Status.CANCELLED
    )
    if exclude_issue is not None:
        carried = carried.exclude(issue=exclude_issue)
    # Issue 14: a story is curated once, by its original; its translations follow it
    # into each language's edition (newsletter/digest.py), so they are not items.
    articles = articles.filter(translation_of__isnull=True)
    return articles.exclude(pk__in=carried.values("article_id")).order_by(
        "-priority", "-published_at", "id"
    )


# The order editors see an issue's items in, and the digest shows them: sections by
# category position, pinned first within a section, then position.
ITEM_DISPLAY_ORDER = (
    F("section__position").asc(nulls_last=True),
    "section__name",
    "-pinned",
    "position",
    "id",
)
POSITION_STEP = 10


def issue_items_renumber(*, issue: Issue) -> int:
    """Number the issue's items 10, 20, 30… in the order they are shown; return how many moved.

    Positions an editor reads on the issue page then follow the rows from top to bottom,
    with room to type a number between two of them.
    """
    items = list(
        IssueItem.objects.filter(issue=issue).order_by(*ITEM_DISPLAY_ORDER).only("id", "position")
    )
    moved = []
    for index, item in enumerate(items, start=1):
        if item.position != index * POSITION_STEP:
            item.position = index * POSITION_STEP
            moved.append(item)
    IssueItem.objects.bulk_update(moved, ["position"])
    return len(moved)


def issue_compile(
    *, newsletter: Newsletter, week: IsoWeek | None = None, now: datetime | None = None
) -> CompileResult:
    """Draft the issue of `week` (default: the current one) from its window's articles.

    The window runs from the previous issue's cutoff to this week's send moment (or
    now, if sooner), and the issue's cutoff becomes the end of what it gathered: an
    issue compiled and sent early leaves the rest of its week to the next one. Only
    published articles that no earlier issue carried are taken, in sections by
    category, ranked by editor priority then date. Re-compiling a draft keeps what
    editors did (order, pins, removals, abstracts) and appends what is new. An empty
    week makes no issue.
    """
    now = now or timezone.now()
    week = week or current_week(newsletter, now)
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
        previous = _previous_issue(newsletter, before=issue)
        start, end = issue_window(
            newsletter, week, after=previous.window_end if previous is not None else None
        )
        cutoff = max(start, min(end, now))
        articles = list(
            _articles_for(newsletter, start, cutoff, exclude_issue=issue, previous=previous)
        )
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
                window_end=cutoff,
                utm_source="newsletter",
                utm_medium="email",
                utm_campaign=f"{newsletter.slug}-{number}",
            )
        else:
            Issue.objects.filter(pk=issue.pk).update(window_start=start, window_end=cutoff)
            issue.window_start, issue.window_end = start, cutoff
        last = issue.items.aggregate(p=Max("position"))["p"] or 0
        IssueItem.objects.bulk_create(
            [
                IssueItem(
                    issue=issue, article=article, section=article.category, position=last + index
                )
                for index, article in enumerate(articles, start=1)
            ]
        )
        issue_items_renumber(issue=issue)
    verb = "Drafted" if created else "Updated"
    return CompileResult(
        issue=issue,
        created=created,
        added=len(articles),
        message=f"{verb} No. {issue.number} for {week}: {len(articles)} new articles.",
    )


def issue_compile_due(
    *, newsletter: Newsletter, now: datetime | None = None
) -> CompileResult | None:
    """Run the scheduled compile of `newsletter` if its weekday and time have come.

    Return None when there is nothing to do: not yet time, the week already has an
    issue (even a cancelled one: an editor decided), or the week was found empty
    before — the editors are told about an empty week once, not at every tick.
    A new draft is announced to the editors and, under "send unless held", scheduled
    after the newsletter's review time.
    """
    now = now or timezone.now()
    week = current_week(newsletter, now)
    if now < send_moment(newsletter, week):
        return None
    if Issue.objects.filter(newsletter=newsletter, week=str(week)).exists():
        return None
    if EmptyWeek.objects.filter(newsletter=newsletter, week=str(week)).exists():
        return None
    result = issue_compile(newsletter=newsletter, week=week, now=now)
    if result.issue is None:
        _, first_time = EmptyWeek.objects.get_or_create(newsletter=newsletter, week=str(week))
        if first_time:
            editors_notify_empty_week(newsletter=newsletter, week=str(week))
        return result
    if result.created:
        if newsletter.approval_policy == Newsletter.Approval.AUTO:
            Issue.objects.filter(pk=result.issue.pk, status=Status.DRAFT).update(
                status=Status.SCHEDULED,
                scheduled_at=now + timedelta(hours=newsletter.review_hours),
            )
            result.issue.refresh_from_db()
        editors_notify_drafted(issue=result.issue)
    return result


def issue_schedule(*, issue: Issue, at: datetime, now: datetime | None = None) -> Issue:
    """Schedule a draft (or move a scheduled issue) to be sent at `at`, which must be ahead."""
    now = now or timezone.now()
    if at <= now:
        raise IssueActionError(
            f"{timezone.localtime(at, issue.newsletter.tz):%Y-%m-%d %H:%M} "
            f"({issue.newsletter.timezone}) is in the past: choose a later time."
        )
    _require_items(issue, "scheduled")
    return _transition(
        issue,
        allowed=[Status.DRAFT, Status.SCHEDULED],
        action="scheduled",
        status=Status.SCHEDULED,
        scheduled_at=at,
    )


def issue_hold(*, issue: Issue) -> Issue:
    """Take a scheduled issue back to draft: it is not sent until someone schedules it again."""
    return _transition(
        issue, allowed=[Status.SCHEDULED], action="held", status=Status.DRAFT, scheduled_at=None
    )


def issue_cancel(*, issue: Issue) -> Issue:
    """Cancel a draft or scheduled issue for good; its articles become free for a later issue."""
    return _transition(
        issue,
        allowed=[Status.DRAFT, Status.SCHEDULED],
        action="cancelled",
        status=Status.CANCELLED,
        scheduled_at=None,
    )


def issue_send_scheduled(*, issue: Issue, now: datetime | None = None) -> int:
    """Start sending a scheduled issue whose time has come; return the readers queued.

    Only an issue still scheduled, for a time already past, is claimed: one held
    back to draft a moment ago stays held. An issue that cannot go (an editor removed
    every article) goes back to draft and the editors are told, instead of failing
    again at every tick.
    """
    now = now or timezone.now()
    try:
        return issue_start_sending(issue=issue, now=now, scheduled=True)
    except IssueNotSendable as exc:
        reverted = Issue.objects.filter(
            pk=issue.pk, status=Status.SCHEDULED, scheduled_at__lte=now
        ).update(status=Status.DRAFT, scheduled_at=None)
        if reverted:
            editors_notify_not_sent(issue=issue, reason=str(exc))
        raise


def issue_start_sending(
    *, issue: Issue, now: datetime | None = None, scheduled: bool = False
) -> int:
    """Claim the issue for sending and start its fan-out; return the readers it goes to.

    A conditional UPDATE claims the issue: of two editors pressing "send" at once,
    one changes the row and the other sees zero rows changed and gets an error.
    With `scheduled`, only a scheduled issue whose time has come is claimed. The
    fan-out writes the ledger and enqueues the batches in a task, once this commits.
    """
    now = now or timezone.now()
    _require_items(issue, "sent")
    claimable = (
        Issue.objects.filter(pk=issue.pk, status=Status.SCHEDULED, scheduled_at__lte=now)
        if scheduled
        else Issue.objects.filter(pk=issue.pk, status__in=[Status.DRAFT, Status.SCHEDULED])
    )
    with transaction.atomic():
        claimed = claimable.update(status=Status.SENDING, send_started_at=now)
        if not claimed:
            raise IssueNotSendable(_refused(issue, "sent"))
        eligible = fan_out_start(issue=issue, now=now)
    issue.refresh_from_db()
    return eligible


def issue_resume_sending(*, issue: Issue, requeued: int, now: datetime) -> None:
    """Put a sent (or still sending) issue back to sending for `requeued` failed rows.

    The failed counter gives the rows back, the batches count them again, and the
    give-up budget starts afresh. Call it in the transaction that locked the issue.
    """
    Issue.objects.filter(pk=issue.pk, status__in=[Status.SENT, Status.SENDING]).update(
        status=Status.SENDING,
        sent_at=None,
        resent_at=now,
        failed_count=F("failed_count") - requeued,
    )


def issue_finish_if_done(*, issue_id: int, now: datetime) -> bool:
    """Mark the issue sent once its ledger is complete and no row is queued or sending.

    Returns True if this call marked it. Never while a row waits (out a rate limit,
    say): it is queued until it goes; never while the fan-out still writes the ledger.
    """
    if Delivery.objects.filter(
        issue_id=issue_id, status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING]
    ).exists():
        return False
    return bool(
        Issue.objects.filter(
            pk=issue_id, status=Status.SENDING, fanout_done_at__isnull=False
        ).update(status=Status.SENT, sent_at=now)
    )


def issue_send_test(
    *,
    issue: Issue,
    to: list[str],
    categories: Iterable[int] | None = None,
    language: str | None = None,
) -> int:
    """Send the issue, subject marked [TEST], to `to`; no Delivery is written.

    With `categories`, send the variant a reader who chose them receives; without,
    every section. `language` picks the edition (the default one when None).
    """
    digest = digest_build(issue, language=language)
    variant = digest.variant_for(categories or [])
    if not variant:
        raise IssueActionError(
            "None of the chosen sections is in this issue: a reader who chose them gets nothing."
        )
    rendered = digest_render(digest, variant, test=True)
    probe = Subscriber(pk=0, newsletter=issue.newsletter, email="", token_secret="test-send")
    sent = 0
    for address in to:
        probe.email = address
        message = digest_message(rendered, issue=issue, subscriber=probe, delivery_id=0)
        sent += message.send()
    return sent
