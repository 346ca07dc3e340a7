"""The newsroom's time, everywhere: the server runs in UTC, editors and readers see the
newsletter's zone — one east of UTC (Asia/Shanghai) and one west (America/New_York)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from newsletter.digest import digest_build, digest_render
from newsletter.models import Issue
from newsletter.services.issues import issue_compile, issue_start_sending
from newsletter.tasks import compile_due_issues
from tests.factories import (
    ArticleFactory,
    IssueFactory,
    IssueItemFactory,
    StaffUserFactory,
    SubscriberFactory,
    default_newsletter,
)

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 24, 1, 7, tzinfo=UTC)  # a Tuesday
ZONES = ["Asia/Shanghai", "America/New_York"]


@pytest.fixture(autouse=True)
def _server_in_utc(settings):
    settings.TIME_ZONE = "UTC"


@pytest.fixture(params=ZONES)
def zone(request) -> ZoneInfo:
    newsletter = default_newsletter()
    newsletter.timezone = request.param
    newsletter.save()
    return ZoneInfo(request.param)


@pytest.fixture
def publisher(client):
    client.force_login(StaffUserFactory(username="chen", groups=["Publishers"]))


def shown_value(page) -> str:
    return re.search(r'name="at" value="([^"]+)"', page.content.decode()).group(1)


def text(response) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def test_a_time_round_trips_through_schedule_reschedule_and_save(client, publisher, issue, zone):
    schedule = reverse("admin:newsletter_issue_schedule", args=[issue.pk])
    with time_machine.travel(NOW, tick=False):
        client.post(schedule, {"at": "2026-11-24T18:00"})  # Tuesday 18:00, newsroom time
        issue.refresh_from_db()
        assert issue.scheduled_at == datetime(2026, 11, 24, 18, 0, tzinfo=zone)
        again = client.get(schedule)
        assert shown_value(again) == "2026-11-24T18:00"  # the editor's time, not the server's
        assert client.post(schedule, {"at": shown_value(again)}).status_code == 302
        issue.refresh_from_db()
        assert issue.scheduled_at == datetime(2026, 11, 24, 18, 0, tzinfo=zone)
        listing = text(client.get(reverse("admin:newsletter_issue_changelist")))
        assert f"Tue 2026-11-24 18:00 ({zone.key})" in listing


def test_the_suggested_time_is_ahead_and_accepted_as_it_is(client, publisher, issue, zone):
    schedule = reverse("admin:newsletter_issue_schedule", args=[issue.pk])
    with time_machine.travel(NOW, tick=False):
        suggested = shown_value(client.get(schedule))
        local = datetime.fromisoformat(suggested).replace(tzinfo=zone)
        assert timedelta(minutes=30) <= local - NOW <= timedelta(minutes=45)
        response = client.post(schedule, {"at": suggested})
        assert response.status_code == 302, text(response)
    issue.refresh_from_db()
    assert issue.scheduled_at == local


def test_article_dates_in_the_email_and_archive_are_the_newsrooms(client, zone, run_on_commit):
    # 23:30 on the 26th in New York is 04:30 on the 27th in UTC and 12:30 in Shanghai.
    moment = datetime(2026, 11, 26, 23, 30, tzinfo=ZoneInfo("America/New_York"))
    expected = f"{moment.astimezone(zone):%B} {moment.astimezone(zone).day}, 2026"
    issue = IssueFactory(number=3)
    IssueItemFactory(issue=issue, article=ArticleFactory(published_at=moment))
    digest = digest_build(issue)
    email = digest_render(digest, digest.section_keys)
    assert expected in email.html and expected in email.text
    SubscriberFactory()
    with run_on_commit():
        issue_start_sending(issue=issue)
    page = text(client.get(reverse("newsletter:archive-issue", args=[3])))
    assert expected in page


def test_the_article_list_in_admin_shows_the_newsrooms_time(client, zone):
    client.force_login(StaffUserFactory(username="root", is_superuser=True))
    ArticleFactory(title="Late story", published_at=datetime(2026, 11, 27, 4, 30, tzinfo=UTC))
    listing = text(client.get(reverse("admin:articles_article_changelist")))
    expected = {
        "Asia/Shanghai": "Nov. 27, 2026, 12:30 p.m.",
        "America/New_York": "Nov. 26, 2026, 11:30 p.m.",
    }[zone.key]
    assert expected in listing


def test_an_early_send_in_the_newsrooms_week_leaves_the_rest_to_the_next(zone, run_on_commit):
    # Monday 10:00 in the newsroom's zone, whatever the server's.
    monday = datetime(2026, 11, 23, 10, 0, tzinfo=zone)
    friday_send = datetime(2026, 11, 27, 9, 0, tzinfo=zone)
    SubscriberFactory()
    ArticleFactory(published_at=monday - timedelta(hours=20))
    with time_machine.travel(monday, tick=False), run_on_commit():
        issue_start_sending(issue=issue_compile(newsletter=default_newsletter()).issue)
    tuesday = ArticleFactory(published_at=monday + timedelta(days=1))
    thursday = ArticleFactory(published_at=monday + timedelta(days=3))
    with time_machine.travel(friday_send + timedelta(days=7, minutes=1), tick=False):
        compile_due_issues.delay()
    second = Issue.objects.get(number=2)
    assert second.week == "2026-W49"
    assert set(second.items.values_list("article_id", flat=True)) == {tuesday.pk, thursday.pk}
