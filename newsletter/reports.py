"""Reads for the results and list-health reports in admin.

Definitions, as a newsroom reads them:

- accepted: the ESP took the message (sent, then maybe bounced or complained).
- delivered: accepted and not bounced. A complaint proves delivery.
- bounce rate: bounced / accepted. Complaint, open, click and unsubscribe rates are
  per delivered email. Opens include readers who clicked (images may be blocked).
- unsubscribes after an issue: readers who got it and withdrew (by any means but a
  spam complaint, which is counted as a complaint) before the next issue went out.
- complaint rate: Gmail and Yahoo ask bulk senders to stay below 0.1 % and never
  reach 0.3 %; the list-health report compares the last 30 days and each week.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate, TruncWeek
from django.utils import timezone
from django.utils.translation import gettext as _

from articles.models import Article
from newsletter.models import (
    ConsentRecord,
    Delivery,
    Issue,
    LeavingReason,
    Newsletter,
    Repermission,
    Subscriber,
    TrackingEvent,
)
from newsletter.services.tracking import COMPLAINT_METHOD

Status = Delivery.Status
ACCEPTED = [Status.SENT, Status.BOUNCED, Status.COMPLAINED]
DELIVERED = [Status.SENT, Status.COMPLAINED]

# Gmail's and Yahoo's bulk-sender rules (February 2024): keep spam complaints below
# 0.1 % of delivered mail, never reach 0.3 %. "Near" warns before the first is passed.
COMPLAINT_TARGET = 0.001
COMPLAINT_LIMIT = 0.003
COMPLAINT_NEAR = 0.0008


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def complaint_level(value: float | None) -> str:
    """Return "none" (no mail delivered), "ok", "near", "over-target" or "over-limit"."""
    if value is None:
        return "none"
    if value >= COMPLAINT_LIMIT:
        return "over-limit"
    if value >= COMPLAINT_TARGET:
        return "over-target"
    if value >= COMPLAINT_NEAR:
        return "near"
    return "ok"


def complaint_advice(level: str) -> str:
    return {
        "none": _("No mail delivered in this period."),
        "ok": _("Well below Gmail's and Yahoo's 0.1 % target."),
        "near": _(
            "Close to the 0.1 % target: check what recent issues did differently "
            "(sign-up sources, frequency, subject lines)."
        ),
        "over-target": _(
            "Above the 0.1 % target: mailbox providers start to junk or throttle. Act now: "
            "make unsubscribing prominent and stop mailing readers who never open."
        ),
        "over-limit": _(
            "At or above the 0.3 % limit: Gmail and Yahoo reject or junk bulk mail from "
            "senders here. Pause sending and fix the cause before the next issue."
        ),
    }[level]


# --- one issue ------------------------------------------------------------------------------


@dataclass
class LinkClicks:
    label: str
    url: str  # shown to editors: never carries a reader's token
    clicks: int
    readers: int
    is_article: bool


class Rates:
    """Rates of an issue's numbers; the class using it holds the counts."""

    accepted: int
    delivered: int
    bounced: int
    complained: int
    opened: int
    clicked: int

    @property
    def bounce_rate(self) -> float | None:
        return rate(self.bounced, self.accepted)

    @property
    def complaint_rate(self) -> float | None:
        return rate(self.complained, self.delivered)

    @property
    def open_rate(self) -> float | None:
        return rate(self.opened, self.delivered)

    @property
    def click_rate(self) -> float | None:
        return rate(self.clicked, self.delivered)


# Issues looked at to tell whether the ESP reports opens and clicks at all.
TRACKING_LOOKBACK_ISSUES = 5


def engagement_tracked(*, newsletter: Newsletter) -> tuple[bool, bool]:
    """Return whether opens, and clicks, are tracked for this newsletter: (opens, clicks).

    Without the webhook secret no event can arrive; with it, an ESP whose open or click
    tracking is off never reports one. Either way a 0.0 % would be a lie: the reports
    say "not tracked". A kind counts as tracked once any reader of one of the latest
    issues has an open (or click) on record.
    """
    if not settings.ANYMAIL.get("WEBHOOK_SECRET"):
        return (False, False)
    recent = Issue.objects.filter(
        newsletter=newsletter, status__in=[Issue.Status.SENDING, Issue.Status.SENT]
    ).order_by("-number")[:TRACKING_LOOKBACK_ISSUES]
    deliveries = Delivery.objects.filter(issue__in=list(recent.values_list("pk", flat=True)))
    return (
        deliveries.filter(opened_at__isnull=False).exists(),
        deliveries.filter(clicked_at__isnull=False).exists(),
    )


def _counts() -> dict:
    """Return the per-status counts of deliveries, for aggregate() or annotate()."""
    return {
        "accepted": Count("id", filter=Q(status__in=ACCEPTED)),
        "delivered": Count("id", filter=Q(status__in=DELIVERED)),
        "bounced": Count("id", filter=Q(status=Status.BOUNCED)),
        "complained": Count("id", filter=Q(status=Status.COMPLAINED)),
        "opened": Count("id", filter=Q(opened_at__isnull=False, status__in=DELIVERED)),
        "clicked": Count("id", filter=Q(clicked_at__isnull=False, status__in=DELIVERED)),
    }


@dataclass
class IssueReport(Rates):
    issue: Issue
    recipients: int = 0
    accepted: int = 0
    delivered: int = 0
    bounced: int = 0
    hard_bounces: int = 0
    soft_bounces: int = 0
    complained: int = 0
    failed: int = 0
    skipped: int = 0
    in_progress: int = 0
    opened: int = 0
    clicked: int = 0
    opens: int = 0
    clicks: int = 0
    opens_tracked: bool = True
    clicks_tracked: bool = True
    unsubscribed: int = 0
    unsubscribe_methods: dict[str, int] = field(default_factory=dict)
    links: list[LinkClicks] = field(default_factory=list)
    by_day: list[tuple[date, int, int]] = field(default_factory=list)  # (day, opened, clicked)

    @property
    def click_to_open_rate(self) -> float | None:
        return rate(self.clicked, self.opened)

    @property
    def unsubscribe_rate(self) -> float | None:
        return rate(self.unsubscribed, self.delivered)

    @property
    def complaint_level(self) -> str:
        return complaint_level(self.complaint_rate)


def _delivery_counts(deliveries: QuerySet[Delivery]) -> dict[str, int]:
    return {
        key: value or 0
        for key, value in deliveries.aggregate(
            **_counts(),
            recipients=Count("id"),
            failed=Count("id", filter=Q(status=Status.FAILED)),
            skipped=Count("id", filter=Q(status=Status.SKIPPED)),
            in_progress=Count("id", filter=Q(status__in=[Status.QUEUED, Status.SENDING])),
            opens=Sum("open_count"),
            clicks=Sum("click_count"),
        ).items()
    }


def _strip_tracking(url: str) -> str:
    """Return `url` without UTM tags or fragment, as an article's canonical URL reads."""
    parts = urlsplit(url)
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.startswith("utm_")
    ]
    return urlunsplit(parts._replace(query=urlencode(query), fragment=""))


def _own_link_label(url: str) -> str | None:
    """Name links to our own pages; their paths may hold a reader's token, never shown."""
    site = urlsplit(settings.SITE_URL)
    parts = urlsplit(url)
    if parts.netloc != site.netloc:
        return None
    path = parts.path.removeprefix(site.path.rstrip("/"))
    for prefix, label in (
        ("/newsletter/unsubscribe/", _("Unsubscribe link")),
        ("/newsletter/preferences/", _("Preferences link")),
        ("/newsletter/archive/", _("Web version and archive")),
    ):
        if path.startswith(prefix):
            return label
    return _("Other page on our site")


def issue_links(*, issue: Issue, limit: int = 10) -> list[LinkClicks]:
    """Return the most-clicked links of the issue, articles by title, most clicks first."""
    rows = (
        TrackingEvent.objects.filter(delivery__issue=issue, event_type="clicked")
        .exclude(click_url="")
        .values("click_url")
        .annotate(clicks=Count("id"))
    )
    readers_by: dict[str, set[int]] = {}
    clicks_by: dict[str, int] = {}
    for row in rows:
        url = _strip_tracking(row["click_url"])
        label = _own_link_label(url)
        key = label or url
        clicks_by[key] = clicks_by.get(key, 0) + row["clicks"]
    for url, delivery_id in (
        TrackingEvent.objects.filter(delivery__issue=issue, event_type="clicked")
        .exclude(click_url="")
        .values_list("click_url", "delivery_id")
        .distinct()
    ):
        stripped = _strip_tracking(url)
        readers_by.setdefault(_own_link_label(stripped) or stripped, set()).add(delivery_id)
    titles = dict(Article.objects.filter(url__in=list(clicks_by)).values_list("url", "title"))
    links = [
        LinkClicks(
            label=titles.get(key, key),
            url=key if key.startswith("http") else "",
            clicks=clicks,
            readers=len(readers_by.get(key, ())),
            is_article=key in titles,
        )
        for key, clicks in clicks_by.items()
    ]
    links.sort(key=lambda link: (-link.readers, -link.clicks, link.label))
    return links[:limit]


def _next_send(issue: Issue, start: datetime) -> datetime | None:
    return (
        Issue.objects.filter(newsletter_id=issue.newsletter_id, send_started_at__gt=start)
        .exclude(pk=issue.pk)
        .order_by("send_started_at")
        .values_list("send_started_at", flat=True)
        .first()
    )


def issue_unsubscribes(*, issue: Issue) -> dict[str, int]:
    """Return withdrawals by method from readers who got the issue, until the next one."""
    start = issue.send_started_at or issue.sent_at
    if start is None:
        return {}
    records = ConsentRecord.objects.filter(
        action=ConsentRecord.Action.WITHDRAW,
        at__gte=start,
        subscriber__in=Delivery.objects.filter(issue=issue, status__in=DELIVERED).values(
            "subscriber_id"
        ),
    ).exclude(method=COMPLAINT_METHOD)
    end = _next_send(issue, start)
    if end is not None:
        records = records.filter(at__lt=end)
    return {
        row["method"] or _("other"): row["n"]
        for row in records.values("method").annotate(n=Count("subscriber", distinct=True))
    }


def issue_report(*, issue: Issue) -> IssueReport:
    """Return the results of one issue; a fixed number of queries whatever its size."""
    deliveries = Delivery.objects.filter(issue=issue)
    report = IssueReport(issue=issue, **_delivery_counts(deliveries))
    kinds = dict(
        TrackingEvent.objects.filter(delivery__issue=issue, delivery__status=Status.BOUNCED)
        .exclude(bounce_kind="")
        .values("bounce_kind")
        .annotate(n=Count("delivery", distinct=True))
        .values_list("bounce_kind", "n")
    )
    report.hard_bounces = kinds.get(TrackingEvent.BounceKind.HARD, 0)
    report.soft_bounces = kinds.get(TrackingEvent.BounceKind.SOFT, 0)
    report.unsubscribe_methods = issue_unsubscribes(issue=issue)
    report.unsubscribed = sum(report.unsubscribe_methods.values())
    report.links = issue_links(issue=issue)
    report.by_day = issue_engagement_by_day(issue=issue)
    report.opens_tracked, report.clicks_tracked = engagement_tracked(newsletter=issue.newsletter)
    return report


def issue_engagement_by_day(*, issue: Issue, days: int = 7) -> list[tuple[date, int, int]]:
    """Return (day, first opens, first clicks) for each of the first `days` days."""
    start = issue.send_started_at or issue.sent_at
    if start is None:
        return []
    first = timezone.localdate(start)
    tz = timezone.get_current_timezone()
    counts: dict[str, dict[date, int]] = {}
    for stamp in ("opened_at", "clicked_at"):
        counts[stamp] = dict(
            Delivery.objects.filter(issue=issue, **{f"{stamp}__isnull": False})
            .annotate(day=TruncDate(stamp, tzinfo=tz))
            .values("day")
            .annotate(n=Count("id"))
            .values_list("day", "n")
        )
    return [
        (day, counts["opened_at"].get(day, 0), counts["clicked_at"].get(day, 0))
        for day in (first + timedelta(days=n) for n in range(days))
    ]


# --- the whole list ------------------------------------------------------------------------------


@dataclass
class HealthWeek:
    start: date
    new: int = 0
    confirmed: int = 0
    unsubscribed: int = 0
    bounced: int = 0
    complained: int = 0
    paused: int = 0
    delivered: int = 0
    complaints: int = 0  # complaint events about this week's mail, for the rate

    @property
    def complaint_rate(self) -> float | None:
        return rate(self.complaints, self.delivered)

    @property
    def complaint_level(self) -> str:
        return complaint_level(self.complaint_rate)

    @property
    def net(self) -> int:
        return self.confirmed - self.unsubscribed - self.bounced - self.complained - self.paused


@dataclass
class IssueRow(Rates):
    issue: Issue
    delivered: int
    bounced: int
    accepted: int
    complained: int
    opened: int
    clicked: int
    opens_tracked: bool = True
    clicks_tracked: bool = True


@dataclass
class ListHealth:
    newsletter: Newsletter
    weeks: list[HealthWeek]
    totals: dict[str, int]
    paused_now: int
    delivered_30d: int
    complaints_30d: int
    issues: list[IssueRow]

    @property
    def complaint_rate_30d(self) -> float | None:
        return rate(self.complaints_30d, self.delivered_30d)

    @property
    def complaint_level(self) -> str:
        return complaint_level(self.complaint_rate_30d)

    @property
    def complaint_advice(self) -> str:
        return complaint_advice(self.complaint_level)


def _week_start(moment: datetime) -> date:
    day = timezone.localdate(moment)
    return day - timedelta(days=day.weekday())


def _per_week(queryset: QuerySet, stamp: str, since: datetime, count: str = "id") -> dict:
    tz = timezone.get_current_timezone()
    rows = (
        queryset.filter(**{f"{stamp}__gte": since})
        .annotate(week=TruncWeek(stamp, tzinfo=tz))
        .values("week")
        .annotate(n=Count(count, distinct=True))
        .values_list("week", "n")
    )
    return {_week_start(week) if isinstance(week, datetime) else week: n for week, n in rows}


def _complaint_events(newsletter: Newsletter) -> QuerySet[TrackingEvent]:
    return TrackingEvent.objects.filter(
        event_type="complained", delivery__issue__newsletter=newsletter
    )


def list_health(
    *, newsletter: Newsletter, weeks: int = 12, now: datetime | None = None
) -> ListHealth:
    """Return the list's gains and losses per week, its complaint rate and recent issues."""
    now = now or timezone.now()
    this_week = _week_start(now)
    first_week = this_week - timedelta(weeks=weeks - 1)
    tz = timezone.get_current_timezone()
    since = datetime.combine(first_week, datetime.min.time(), tzinfo=tz)
    readers = Subscriber.objects.filter(newsletter=newsletter)
    events = TrackingEvent.objects.filter(
        Q(delivery__issue__newsletter=newsletter)
        | Q(delivery__isnull=True, payload__metadata__subscriber__isnull=False)
    )
    series = {
        "new": _per_week(readers, "created_at", since),
        "confirmed": _per_week(readers, "confirmed_at", since),
        "unsubscribed": _per_week(
            ConsentRecord.objects.filter(
                subscriber__newsletter=newsletter, action=ConsentRecord.Action.WITHDRAW
            ).exclude(method=COMPLAINT_METHOD),
            "at",
            since,
            count="subscriber",
        ),
        "bounced": _per_week(
            events.filter(outcome=TrackingEvent.Outcome.BOUNCED), "received_at", since
        ),
        "complained": _per_week(
            events.filter(outcome=TrackingEvent.Outcome.COMPLAINED), "received_at", since
        ),
        "paused": _per_week(
            Repermission.objects.filter(
                subscriber__newsletter=newsletter, outcome=Repermission.Outcome.PAUSED
            ),
            "decided_at",
            since,
        ),
        "delivered": _per_week(
            Delivery.objects.filter(issue__newsletter=newsletter, status__in=DELIVERED),
            "sent_at",
            since,
        ),
        "complaints": _per_week(_complaint_events(newsletter), "received_at", since, "delivery"),
    }
    rows = [
        HealthWeek(start=start, **{name: values.get(start, 0) for name, values in series.items()})
        for start in (first_week + timedelta(weeks=n) for n in range(weeks))
    ]
    month_ago = now - timedelta(days=30)
    return ListHealth(
        newsletter=newsletter,
        weeks=rows,
        totals=dict(readers.values("status").annotate(n=Count("id")).values_list("status", "n")),
        paused_now=readers.filter(status=Subscriber.Status.ACTIVE, paused_until__gt=now).count(),
        delivered_30d=Delivery.objects.filter(
            issue__newsletter=newsletter, status__in=DELIVERED, sent_at__gte=month_ago
        ).count(),
        complaints_30d=_complaint_events(newsletter)
        .filter(received_at__gte=month_ago)
        .values("delivery")
        .distinct()
        .count(),
        issues=recent_issues(newsletter=newsletter),
    )


def recent_issues(*, newsletter: Newsletter, limit: int = 8) -> list[IssueRow]:
    """Return the latest sent issues with their headline numbers, in one query."""
    issues = list(
        Issue.objects.filter(
            newsletter=newsletter, status__in=[Issue.Status.SENT, Issue.Status.SENDING]
        ).order_by("-number")[:limit]
    )
    counts = {
        row["issue"]: row
        for row in Delivery.objects.filter(issue__in=issues).values("issue").annotate(**_counts())
    }
    empty = dict.fromkeys(
        ("delivered", "accepted", "bounced", "complained", "opened", "clicked"), 0
    )
    opens_tracked, clicks_tracked = engagement_tracked(newsletter=newsletter)
    return [
        IssueRow(
            issue=issue,
            **{key: counts.get(issue.pk, empty)[key] for key in empty},
            opens_tracked=opens_tracked,
            clicks_tracked=clicks_tracked,
        )
        for issue in issues
    ]


@dataclass
class LeavingWeek:
    start: date
    reasons: list[int]  # one count per LeavingReason.Reason, in its order
    own_words: int  # answers with words of the reader's own, with or without a reason
    own_words_only: int  # answers with words and no reason

    @property
    def total(self) -> int:
        return sum(self.reasons) + self.own_words_only


@dataclass
class LeavingReport:
    labels: list[str]
    weeks: list[LeavingWeek]
    recent_words: list[LeavingReason]


def leaving_reasons(
    *, newsletter: Newsletter, weeks: int = 12, now: datetime | None = None, words: int = 10
) -> LeavingReport:
    """Return why readers left, week by week (the week they answered), and their latest words."""
    now = now or timezone.now()
    this_week = _week_start(now)
    first_week = this_week - timedelta(weeks=weeks - 1)
    since = datetime.combine(
        first_week, datetime.min.time(), tzinfo=timezone.get_current_timezone()
    )
    answers = LeavingReason.objects.filter(newsletter=newsletter)
    choices = list(LeavingReason.Reason)
    per_reason = {
        reason: _per_week(answers.filter(reason=reason), "at", since) for reason in choices
    }
    with_words = _per_week(answers.exclude(comment=""), "at", since)
    words_only = _per_week(answers.filter(reason="").exclude(comment=""), "at", since)
    rows = [
        LeavingWeek(
            start=start,
            reasons=[per_reason[reason].get(start, 0) for reason in choices],
            own_words=with_words.get(start, 0),
            own_words_only=words_only.get(start, 0),
        )
        for start in (first_week + timedelta(weeks=n) for n in range(weeks))
    ]
    return LeavingReport(
        labels=[reason.label for reason in choices],
        weeks=rows,
        recent_words=list(answers.exclude(comment="").filter(at__gte=since)[:words]),
    )
