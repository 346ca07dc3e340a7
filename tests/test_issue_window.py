"""Nothing falls between issues: each issue starts where the previous one stopped."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from newsletter.models import Issue
from newsletter.services.issues import issue_compile, issue_start_sending
from newsletter.tasks import compile_due_issues
from newsletter.weeks import IsoWeek
from tests.factories import ArticleFactory, SubscriberFactory, default_newsletter

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)  # week 48; it goes out Fridays 09:00
FRIDAY_SEND = datetime(2026, 11, 27, 9, 0, tzinfo=SHANGHAI)


def tick(moment: datetime) -> None:
    with time_machine.travel(moment, tick=False):
        compile_due_issues.delay()


def carried(issue: Issue) -> set[int]:
    return set(issue.items.values_list("article_id", flat=True))


def test_an_issue_sent_early_leaves_the_rest_of_its_week_to_the_next_issue(run_on_commit):
    SubscriberFactory()
    sunday = ArticleFactory(published_at=MONDAY - timedelta(days=1))
    with time_machine.travel(MONDAY, tick=False), run_on_commit():
        first = issue_compile(newsletter=default_newsletter()).issue
        issue_start_sending(issue=first)
    first.refresh_from_db()
    assert first.status == Issue.Status.SENT and carried(first) == {sunday.pk}
    tuesday = ArticleFactory(published_at=MONDAY + timedelta(days=1))
    thursday = ArticleFactory(published_at=MONDAY + timedelta(days=3))
    tick(FRIDAY_SEND + timedelta(minutes=1))  # week 48 already went out: nothing new
    assert Issue.objects.count() == 1
    tick(FRIDAY_SEND + timedelta(days=7, minutes=1))
    second = Issue.objects.get(number=2)
    assert second.week == "2026-W49"
    assert carried(second) == {tuesday.pk, thursday.pk}
    assert second.window_start == MONDAY


def test_the_next_window_starts_at_the_previous_cutoff_not_seven_days_back():
    newsletter = default_newsletter()
    ArticleFactory(published_at=MONDAY - timedelta(days=1))
    first = issue_compile(newsletter=newsletter, week=IsoWeek.parse("2026-W48"), now=MONDAY)
    assert first.issue.window_end == MONDAY  # compiled early: it gathered until Monday
    # Published after that compile but more than seven days before week 49's send moment.
    wednesday = ArticleFactory(published_at=MONDAY + timedelta(days=2))
    second = issue_compile(
        newsletter=newsletter,
        week=IsoWeek.parse("2026-W49"),
        now=FRIDAY_SEND + timedelta(days=7, hours=1),
    )
    assert wednesday.pk in carried(second.issue)
    assert second.issue.window_start == MONDAY


def test_an_article_fetched_after_the_cutoff_but_dated_before_it_is_not_lost():
    newsletter = default_newsletter()
    ArticleFactory(published_at=FRIDAY_SEND - timedelta(days=2))
    with time_machine.travel(FRIDAY_SEND, tick=False):
        issue_compile(newsletter=newsletter)
    # The feed is fetched a quarter of an hour later with an item dated before 09:00.
    with time_machine.travel(FRIDAY_SEND + timedelta(minutes=15), tick=False):
        late = ArticleFactory(published_at=FRIDAY_SEND - timedelta(minutes=5))
    second = issue_compile(
        newsletter=newsletter,
        week=IsoWeek.parse("2026-W49"),
        now=FRIDAY_SEND + timedelta(days=7),
    )
    assert late.pk in carried(second.issue)
