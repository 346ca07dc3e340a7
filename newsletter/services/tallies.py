"""Rollups the event applier keeps: per issue (IssueTally) and per week (WeeklyTally).

At a million deliveries an issue's report cannot count its ledger on every view (the
aggregate alone took 1.7 s). The tally is counted from the ledger once, the first time
a report asks after the issue finished sending; after that each applied tracking event
adds its part (`issue_tallies_add`, one query per issue per applied batch). An issue
still being sent is counted afresh on each view: its figures change with every batch.

The list-health report's readers bounced and complained per week come the same way
(`weekly_tallies_add`): grouping every event of the newsletter by week through its
deliveries was the report's slowest query at a million events. Migration 0016 filled
the weeks before it from the events already applied.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from newsletter.bulk_sql import rows_update
from newsletter.models import Delivery, Issue, IssueTally, TrackingEvent, WeeklyTally
from newsletter.timezones import newsroom_timezone

Status = Delivery.Status
ACCEPTED = [Status.SENT, Status.BOUNCED, Status.COMPLAINED]
DELIVERED = [Status.SENT, Status.COMPLAINED]
HOUR = "%Y-%m-%dT%H"

# Keys for links to our own pages: their paths hold a reader's token, never stored.
OWN_LINKS = (
    ("/newsletter/unsubscribe/", "@unsubscribe"),
    ("/newsletter/preferences/", "@preferences"),
    ("/newsletter/archive/", "@archive"),
)


def strip_tracking(url: str) -> str:
    """Return `url` without UTM tags or fragment, as an article's canonical URL reads."""
    parts = urlsplit(url)
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.startswith("utm_")
    ]
    return urlunsplit(parts._replace(query=urlencode(query), fragment=""))


def link_key(url: str) -> str:
    """Return the key a clicked link is counted under: its canonical URL, or "@page"."""
    return _link_key(url, settings.SITE_URL)


# An issue's clicks are on a few dozen links: the applier meets the same URLs all day.
@lru_cache(maxsize=4096)
def _link_key(url: str, site_url: str) -> str:
    stripped = strip_tracking(url)
    site = urlsplit(site_url)
    parts = urlsplit(stripped)
    if parts.netloc != site.netloc:
        return stripped
    path = parts.path.removeprefix(site.path.rstrip("/"))
    for prefix, key in OWN_LINKS:
        if path.startswith(prefix):
            return key
    return "@other"


@dataclass
class TallyDelta:
    """What one applied batch adds to one issue's tally."""

    opened: int = 0
    clicked: int = 0
    opens: int = 0
    clicks: int = 0
    bounced: int = 0
    hard_bounces: int = 0
    soft_bounces: int = 0
    complained: int = 0
    complaints: int = 0
    delivered: int = 0
    hourly: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    links: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    COUNTERS = (
        "opened",
        "clicked",
        "opens",
        "clicks",
        "bounced",
        "hard_bounces",
        "soft_bounces",
        "complained",
        "complaints",
        "delivered",
    )


def _utc_hour(moment: datetime) -> str:
    return moment.astimezone(timezone.get_fixed_timezone(0)).strftime(HOUR)


def issue_tally_rebuild(
    *, issue: Issue, now: datetime | None = None, exists: bool = True
) -> IssueTally:
    """Count the issue's figures from the ledger and store them; return the tally.

    An existing tally row stays locked while counting, so an applier adding to it
    waits and its events are neither lost nor counted twice. With `exists` false (the
    caller just found none) there is nothing to lock: appliers add only to tallies
    that exist, and what they wrote meanwhile is in the ledger being counted.
    """
    now = now or timezone.now()
    with transaction.atomic():
        tally = (
            IssueTally.objects.select_for_update().filter(issue=issue).first() if exists else None
        )
        tally = tally or IssueTally(issue=issue, built_at=now)
        deliveries = Delivery.objects.filter(issue=issue)
        counts = deliveries.aggregate(
            recipients=Count("id"),
            accepted=Count("id", filter=Q(status__in=ACCEPTED)),
            delivered=Count("id", filter=Q(status__in=DELIVERED)),
            bounced=Count("id", filter=Q(status=Status.BOUNCED)),
            complained=Count("id", filter=Q(status=Status.COMPLAINED)),
            failed=Count("id", filter=Q(status=Status.FAILED)),
            skipped=Count("id", filter=Q(status=Status.SKIPPED)),
            in_progress=Count("id", filter=Q(status__in=[Status.QUEUED, Status.SENDING])),
            opened=Count("id", filter=Q(opened_at__isnull=False, status__in=DELIVERED)),
            clicked=Count("id", filter=Q(clicked_at__isnull=False, status__in=DELIVERED)),
            opens=Sum("open_count"),
            clicks=Sum("click_count"),
        )
        events = TrackingEvent.objects.filter(delivery__issue=issue)
        bounced = Q(delivery__status=Status.BOUNCED)
        counts |= events.aggregate(
            hard_bounces=Count(
                "delivery",
                distinct=True,
                filter=bounced & Q(bounce_kind=TrackingEvent.BounceKind.HARD),
            ),
            soft_bounces=Count(
                "delivery",
                distinct=True,
                filter=bounced & Q(bounce_kind=TrackingEvent.BounceKind.SOFT),
            ),
            complaints=Count("delivery", distinct=True, filter=Q(event_type="complained")),
        )
        for name, value in counts.items():
            setattr(tally, name, value or 0)
        hourly: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        utc = timezone.get_fixed_timezone(0)
        for opened, clicked, n in (
            deliveries.filter(opened_at__isnull=False)
            .annotate(
                opened=TruncHour("opened_at", tzinfo=utc),
                clicked=TruncHour("clicked_at", tzinfo=utc),
            )
            .values("opened", "clicked")
            .annotate(n=Count("id"))
            .values_list("opened", "clicked", "n")
        ):
            hourly[_utc_hour(opened)][0] += n
            if clicked is not None:
                hourly[_utc_hour(clicked)][1] += n
        links: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        readers: dict[str, set[int]] = defaultdict(set)
        for url, delivery_id in (
            events.filter(event_type="clicked")
            .exclude(click_url="")
            .values_list("click_url", "delivery_id")
        ):
            key = link_key(url)
            links[key][0] += 1
            readers[key].add(delivery_id)
        for key, ids in readers.items():
            links[key][1] = len(ids)
        tally.links = dict(links)
        tally.built_at = now
        tally.save(force_insert=tally._state.adding)
    return tally


def issue_tallies(*, issues, stored: Iterable[IssueTally] | None = None) -> dict[Issue, IssueTally]:
    """Return the tally of each issue (a queryset or list), in one query once all are built.

    `stored`: tallies the caller already read (a wider query of its own), read instead.
    """
    issues = list(issues)
    if stored is None:
        stored = IssueTally.objects.filter(issue__in=issues)
    stored = {tally.issue_id: tally for tally in stored}
    found = {}
    for issue in issues:
        tally = stored.get(issue.pk)
        finished = issue.status in (Issue.Status.SENT, Issue.Status.CANCELLED)
        fresh = tally is not None and (issue.sent_at is None or tally.built_at >= issue.sent_at)
        if finished and fresh:
            found[issue] = tally
            continue
        try:
            found[issue] = issue_tally_rebuild(issue=issue, exists=tally is not None)
        except IntegrityError:  # another request built it first: count again, locked
            found[issue] = issue_tally_rebuild(issue=issue)
    return found


def issue_tally(*, issue: Issue) -> IssueTally:
    """Return the issue's tally: the stored one once it was sent, else counted now."""
    return issue_tallies(issues=[issue])[issue]


def issue_tallies_add(*, deltas: dict[int, TallyDelta]) -> None:
    """Add what a batch of events did to the tallies of their issues (where built)."""
    if not deltas:
        return
    tallies = list(
        IssueTally.objects.select_for_update().filter(issue_id__in=list(deltas)).order_by("pk")
    )
    for tally in tallies:
        delta = deltas[tally.issue_id]
        for name in TallyDelta.COUNTERS:
            setattr(tally, name, getattr(tally, name) + getattr(delta, name))
        for hour, (opened, clicked) in delta.hourly.items():
            before = tally.hourly.get(hour, [0, 0])
            tally.hourly[hour] = [before[0] + opened, before[1] + clicked]
        for key, (clicks, readers) in delta.links.items():
            before = tally.links.get(key, [0, 0])
            tally.links[key] = [before[0] + clicks, before[1] + readers]
    if tallies:
        rows_update(IssueTally, tallies, [*TallyDelta.COUNTERS, "hourly", "links"])


def newsroom_week(moment: datetime) -> date:
    """Return the Monday of the week `moment` falls in, in the newsroom's zone."""
    day = moment.astimezone(newsroom_timezone() or timezone.get_default_timezone()).date()
    return day - timedelta(days=day.weekday())


def weekly_tallies_add(*, counts: dict[tuple[int, date], list[int]]) -> None:
    """Add readers [bounced, complained] per (newsletter id, week) to the weekly rollup.

    One upsert for the batch: a week's row is made by the first event that needs it.
    """
    counts = {key: value for key, value in counts.items() if any(value)}
    if not counts:
        return
    table = connection.ops.quote_name(WeeklyTally._meta.db_table)
    rows = ", ".join(["(%s, %s, %s, %s)"] * len(counts))
    params = [
        value
        for (newsletter_id, week), (bounced, complained) in sorted(counts.items())
        for value in (newsletter_id, week.isoformat(), bounced, complained)
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS t (newsletter_id, week, bounced, complained) "  # noqa: S608 - the model's table; values are parameters
            f"VALUES {rows} ON CONFLICT (newsletter_id, week) DO UPDATE SET "
            "bounced = t.bounced + excluded.bounced, "
            "complained = t.complained + excluded.complained",
            params,
        )
