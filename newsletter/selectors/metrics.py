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

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db.models import Case, Count, Q, QuerySet, Value, When
from django.db.models.functions import TruncWeek
from django.utils import timezone
from django.utils.translation import gettext as _

from articles.models import Article
from newsletter.models import (
    ConsentRecord,
    Delivery,
    Issue,
    IssueTally,
    LeavingReason,
    Newsletter,
    Repermission,
    Subscriber,
    WeeklyTally,
)
from newsletter.selectors.subscribers import subscriber_counts_by_status
from newsletter.services.list_hygiene import COMPLAINT_METHOD, tracking_events_backlog
from newsletter.services.tallies import HOUR, issue_tallies

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


def engagement_tracked(*, tallies: Iterable[IssueTally]) -> tuple[bool, bool]:
    """Return whether opens, and clicks, are tracked: (opens, clicks), from recent tallies.

    Without the webhook secret no event can arrive; with it, an ESP whose open or click
    tracking is off never reports one. Either way a 0.0 % would be a lie: the reports
    say "not tracked". A kind counts as tracked once any reader of one of the given
    (latest) issues has an open (or click) on record.
    """
    if not settings.ANYMAIL.get("WEBHOOK_SECRET"):
        return (False, False)
    tallies = list(tallies)
    return (any(t.opened for t in tallies), any(t.clicked for t in tallies))


def tallies_with_latest(*, issue: Issue) -> list[IssueTally]:
    """Return the stored tallies of `issue` and of its newsletter's latest issues, in one query.

    The report reads its own tally and the latest ones (to tell "not tracked" from 0 %)
    together, so telling costs no query of its own.
    """
    latest = (
        Issue.objects.filter(
            newsletter_id=issue.newsletter_id,
            status__in=[Issue.Status.SENDING, Issue.Status.SENT],
        )
        .order_by("-number")
        .values("pk")[:TRACKING_LOOKBACK_ISSUES]
    )
    return list(IssueTally.objects.filter(Q(issue=issue) | Q(issue__in=latest)))


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
    # Recipients of calls interrupted in flight (timeout, dropped connection, worker
    # killed), sent again: each may have had a second copy (sending/ledger.py).
    possible_duplicates: int = 0
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


def _link_label(key: str) -> str:
    return {
        "@unsubscribe": _("Unsubscribe link"),
        "@preferences": _("Preferences link"),
        "@archive": _("Web version and archive"),
        "@other": _("Other page on our site"),
    }.get(key, key)


def issue_links(*, tally: IssueTally, limit: int = 10) -> list[LinkClicks]:
    """Return the most-clicked links of the issue, articles by title, most clicks first."""
    titles = dict(Article.objects.filter(url__in=list(tally.links)).values_list("url", "title"))
    links = [
        LinkClicks(
            label=titles.get(key) or _link_label(key),
            url=key if key.startswith("http") else "",
            clicks=clicks,
            readers=readers,
            is_article=key in titles,
        )
        for key, (clicks, readers) in tally.links.items()
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
    """Return the results of one issue from its tally; a few queries whatever its size."""
    stored = tallies_with_latest(issue=issue)
    tally = issue_tallies(issues=[issue], stored=stored)[issue]
    report = IssueReport(
        issue=issue,
        **{name: getattr(tally, name) for name in TALLIED},
    )
    report.possible_duplicates = issue.possible_duplicates
    report.unsubscribe_methods = issue_unsubscribes(issue=issue)
    report.unsubscribed = sum(report.unsubscribe_methods.values())
    report.links = issue_links(tally=tally)
    report.by_day = issue_engagement_by_day(issue=issue, tally=tally)
    latest = [t for t in stored if t.issue_id != issue.pk]
    report.opens_tracked, report.clicks_tracked = engagement_tracked(tallies=[tally, *latest])
    return report


TALLIED = (
    "recipients",
    "accepted",
    "delivered",
    "bounced",
    "hard_bounces",
    "soft_bounces",
    "complained",
    "failed",
    "skipped",
    "in_progress",
    "opened",
    "clicked",
    "opens",
    "clicks",
)


def issue_engagement_by_day(
    *, issue: Issue, tally: IssueTally, days: int = 7
) -> list[tuple[date, int, int]]:
    """Return (day, first opens, first clicks) for each of the first `days` days."""
    start = issue.send_started_at or issue.sent_at
    if start is None:
        return []
    first = timezone.localdate(start)
    by_day: dict[date, list[int]] = {}
    for hour, (opened, clicked) in tally.hourly.items():
        moment = datetime.strptime(hour, HOUR).replace(tzinfo=UTC)
        counts = by_day.setdefault(timezone.localdate(moment), [0, 0])
        counts[0] += opened
        counts[1] += clicked
    return [
        (day, *by_day.get(day, [0, 0])) for day in (first + timedelta(days=n) for n in range(days))
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
    totals_estimated: bool = False
    backlog: int = 0  # tracking events stored and not yet applied

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
        # Rows are counted once each anyway; DISTINCT (a sort) only for another column.
        .annotate(n=Count(count, distinct=count != "id"))
        .values_list("week", "n")
    )
    return {_week_start(week) if isinstance(week, datetime) else week: n for week, n in rows}


def _joined_per_week(readers: QuerySet[Subscriber], since: datetime) -> dict[str, dict]:
    """Return readers new and confirmed per week, in one query grouped by both weeks."""
    tz = timezone.get_current_timezone()
    series: dict[str, dict] = {"new": {}, "confirmed": {}}
    rows = (
        readers.filter(Q(created_at__gte=since) | Q(confirmed_at__gte=since))
        .annotate(
            new=TruncWeek("created_at", tzinfo=tz), confirmed=TruncWeek("confirmed_at", tzinfo=tz)
        )
        .values("new", "confirmed")
        .annotate(n=Count("id"))
        .values_list("new", "confirmed", "n")
    )
    first = _week_start(since)
    for new, confirmed, n in rows:
        for name, week in (("new", new), ("confirmed", confirmed)):
            start = _week_start(week) if isinstance(week, datetime) else week
            if start is not None and start >= first:
                series[name][start] = series[name].get(start, 0) + n
    return series


def _losses_per_week(newsletter: Newsletter, first_week: date) -> dict[str, dict]:
    """Return readers bounced and complained per week, from the applier's weekly rollup."""
    series: dict[str, dict] = {"bounced": {}, "complained": {}}
    for week, bounced, complained in WeeklyTally.objects.filter(
        newsletter=newsletter, week__gte=first_week
    ).values_list("week", "bounced", "complained"):
        series["bounced"][week] = bounced
        series["complained"][week] = complained
    return series


def _issues_by_week(
    tallies: dict[Issue, IssueTally], since: datetime
) -> tuple[dict[date, int], dict[date, int]]:
    """Return delivered and complaints per week, each issue counted in its send week."""
    delivered: dict[date, int] = {}
    complaints: dict[date, int] = {}
    for issue, tally in tallies.items():
        start = issue.send_started_at or issue.sent_at
        if start is None or start < since:
            continue
        week = _week_start(start)
        delivered[week] = delivered.get(week, 0) + tally.delivered
        complaints[week] = complaints.get(week, 0) + tally.complaints
    return delivered, complaints


def list_health(
    *, newsletter: Newsletter, weeks: int = 12, now: datetime | None = None
) -> ListHealth:
    """Return the list's gains and losses per week, its complaint rate and recent issues.

    Mail figures come from the issues' tallies (an issue's mail counts in the week it
    was sent), readers bounced and complained from the weekly tallies (in the week
    their event arrived), both kept by the event applier; reader totals are estimates
    on a big PostgreSQL table.
    """
    now = now or timezone.now()
    this_week = _week_start(now)
    first_week = this_week - timedelta(weeks=weeks - 1)
    tz = timezone.get_current_timezone()
    since = datetime.combine(first_week, datetime.min.time(), tzinfo=tz)
    month_ago = now - timedelta(days=30)
    readers = Subscriber.objects.filter(newsletter=newsletter)
    sent = [Issue.Status.SENT, Issue.Status.SENDING]
    latest = Issue.objects.filter(newsletter=newsletter, status__in=sent).order_by("-number")
    tallies = issue_tallies(
        issues=latest.filter(
            Q(send_started_at__gte=min(since, month_ago))
            | Q(pk__in=latest.values("pk")[:RECENT_ISSUES])
        )
    )
    delivered, complaints = _issues_by_week(tallies, since)
    series = {
        **_joined_per_week(readers, since),
        "unsubscribed": _per_week(
            ConsentRecord.objects.filter(
                subscriber__newsletter=newsletter, action=ConsentRecord.Action.WITHDRAW
            ).exclude(method=COMPLAINT_METHOD),
            "at",
            since,
            count="subscriber",
        ),
        **_losses_per_week(newsletter, first_week),
        "paused": _per_week(
            Repermission.objects.filter(
                subscriber__newsletter=newsletter, outcome=Repermission.Outcome.PAUSED
            ),
            "decided_at",
            since,
        ),
        "delivered": delivered,
        "complaints": complaints,
    }
    rows = [
        HealthWeek(start=start, **{name: values.get(start, 0) for name, values in series.items()})
        for start in (first_week + timedelta(weeks=n) for n in range(weeks))
    ]
    last_month = [
        tally
        for issue, tally in tallies.items()
        if (issue.send_started_at or issue.sent_at or now) >= month_ago
    ]
    totals, estimated = subscriber_counts_by_status(newsletter=newsletter)
    recent = sorted(tallies, key=lambda issue: -issue.number)[:RECENT_ISSUES]
    opens_tracked, clicks_tracked = engagement_tracked(
        tallies=[tallies[issue] for issue in recent[:TRACKING_LOOKBACK_ISSUES]]
    )
    return ListHealth(
        newsletter=newsletter,
        weeks=rows,
        totals=totals,
        totals_estimated=estimated,
        paused_now=readers.filter(status=Subscriber.Status.ACTIVE, paused_until__gt=now).count(),
        delivered_30d=sum(tally.delivered for tally in last_month),
        complaints_30d=sum(tally.complaints for tally in last_month),
        issues=[
            IssueRow(
                issue=issue,
                **{key: getattr(tallies[issue], key) for key in ISSUE_ROW},
                opens_tracked=opens_tracked,
                clicks_tracked=clicks_tracked,
            )
            for issue in recent
        ],
        backlog=tracking_events_backlog(),
    )


RECENT_ISSUES = 8
ISSUE_ROW = ("delivered", "accepted", "bounced", "complained", "opened", "clicked")


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
    # One grouped query: answers per week, reason and whether they carry words.
    counts = (
        answers.filter(at__gte=since)
        .annotate(
            week=TruncWeek("at", tzinfo=timezone.get_current_timezone()),
            worded=Case(When(comment="", then=Value(False)), default=Value(True)),
        )
        .values("week", "reason", "worded")
        .annotate(n=Count("id"))
        .values_list("week", "reason", "worded", "n")
    )
    per_week: dict[date, dict[tuple[str, bool], int]] = {}
    for week, reason, worded, n in counts:
        start = _week_start(week) if isinstance(week, datetime) else week
        cell = per_week.setdefault(start, {})
        cell[(reason, bool(worded))] = cell.get((reason, bool(worded)), 0) + n
    rows = []
    for start in (first_week + timedelta(weeks=n) for n in range(weeks)):
        cell = per_week.get(start, {})
        rows.append(
            LeavingWeek(
                start=start,
                reasons=[cell.get((r, False), 0) + cell.get((r, True), 0) for r in choices],
                own_words=sum(n for (_, worded), n in cell.items() if worded),
                own_words_only=cell.get(("", True), 0),
            )
        )
    return LeavingReport(
        labels=[reason.label for reason in choices],
        weeks=rows,
        recent_words=list(answers.exclude(comment="").filter(at__gte=since)[:words]),
    )


def last_issue_row(*, newsletter: Newsletter) -> IssueRow | None:
    """Return the latest issue that went out with its headline numbers (the admin home's)."""
    latest = list(
        Issue.objects.filter(
            newsletter=newsletter, status__in=[Issue.Status.SENDING, Issue.Status.SENT]
        ).order_by("-number")[:TRACKING_LOOKBACK_ISSUES]
    )
    if not latest:
        return None
    tallies = issue_tallies(issues=latest)
    opens_tracked, clicks_tracked = engagement_tracked(tallies=tallies.values())
    return IssueRow(
        issue=latest[0],
        **{key: getattr(tallies[latest[0]], key) for key in ISSUE_ROW},
        opens_tracked=opens_tracked,
        clicks_tracked=clicks_tracked,
    )
