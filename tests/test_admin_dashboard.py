"""The admin home is a dashboard: readers, the next issue, the last one's results, tickets."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from inbox.models import Ticket
from newsletter.models import Issue, Subscriber
from tests.factories import DeliveryFactory, IssueFactory, StaffUserFactory, SubscriberFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)  # Friday 09:00 in Shanghai


@pytest.fixture(autouse=True)
def _frozen(settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "hook:s3cret"}
    with time_machine.travel(NOW, tick=False):
        yield


def tile(page: str, status: str) -> tuple[str, str, str]:
    match = re.search(
        rf'<a href="([^"]+)" id="tile-{status}">.*?<span class="figure">(\d+)</span>'
        rf'<span class="change">([^<]+)</span>',
        page,
        re.S,
    )
    assert match, status
    return match.group(1), match.group(2), match.group(3).strip()


def test_the_home_shows_readers_by_status_with_the_weeks_change_each_linking_to_the_list(client):
    old = NOW - timedelta(days=30)
    SubscriberFactory.create_batch(3, confirmed_at=old)
    SubscriberFactory.create_batch(2, confirmed_at=NOW - timedelta(days=2))
    SubscriberFactory(status=Subscriber.Status.PENDING, confirmed_at=None)
    SubscriberFactory(
        status=Subscriber.Status.UNSUBSCRIBED,
        confirmed_at=old,
        unsubscribed_at=NOW - timedelta(days=1),
    )
    SubscriberFactory(status=Subscriber.Status.UNSUBSCRIBED, confirmed_at=old, unsubscribed_at=old)
    client.force_login(StaffUserFactory(groups=["Publishers"], is_superuser=True))
    page = client.get("/admin/").content.decode()
    assert tile(page, "active") == (
        "/admin/newsletter/subscriber/?status__exact=active",
        "5",
        "+1 this week",  # 2 confirmed, 1 left
    )
    assert tile(page, "pending")[1:] == ("1", "+1 this week")
    assert tile(page, "unsubscribed")[1:] == ("2", "+1 this week")
    listed = client.get("/admin/newsletter/subscriber/?status__exact=active").content.decode()
    assert re.search(r'class="paginator">\s*5 subscribers', listed)  # the tile's figure, listed


def test_the_home_names_the_next_issue_the_last_ones_results_and_open_tickets(client):
    sent = IssueFactory(number=40, status=Issue.Status.SENT, sent_at=NOW - timedelta(days=7))
    DeliveryFactory(issue=sent, opened_at=NOW, clicked_at=NOW)
    DeliveryFactory(issue=sent, opened_at=NOW)
    DeliveryFactory(issue=sent)
    DeliveryFactory(issue=sent)
    scheduled = IssueFactory(
        number=41,
        status=Issue.Status.SCHEDULED,
        scheduled_at=datetime(2026, 11, 28, 1, 0, tzinfo=UTC),
    )
    for n, status in enumerate(["new", "new", "answered", "closed"]):
        Ticket.objects.create(
            reference=f"Q-{n}",
            kind="question",
            status=status,
            name="A",
            email="a@example.org",
            body="?",
        )
    client.force_login(StaffUserFactory(groups=["Publishers"], is_superuser=True))
    page = client.get("/admin/").content.decode()
    nxt = page[page.index('id="dashboard-next"') :]
    assert f'href="/admin/newsletter/issue/{scheduled.pk}/change/"' in nxt
    assert "Scheduled for Sat 28 Nov, 09:00 CST" in nxt  # in the newsletter's zone
    last = page[page.index('id="dashboard-last"') :]
    assert f'href="/admin/newsletter/reports/issue/{sent.pk}/"' in last
    assert "Delivered: <strong>4</strong>" in last
    assert (
        "Open rate: <strong>50.0 %</strong>" in last
        and "Click rate: <strong>25.0 %</strong>" in last
    )
    tickets = page[page.index('id="dashboard-tickets"') :]
    assert '<a href="/admin/inbox/ticket/?status__exact=new"><strong>2</strong>' in tickets
    assert "3 open" in tickets


def test_an_editor_sees_only_what_they_may_open(client):
    SubscriberFactory()
    client.force_login(StaffUserFactory(groups=["Editors"]))
    page = client.get("/admin/").content.decode()
    assert "This week in the newsroom" in page
    editor = StaffUserFactory._meta.model.objects.get(groups__name="Editors")
    assert ('id="tile-active"' in page) == editor.has_perm("newsletter.view_subscriber")
    plain = StaffUserFactory(username="nobody")
    client.force_login(plain)
    page = client.get("/admin/").content.decode()
    assert 'id="tile-active"' not in page and 'id="dashboard-tickets"' not in page
    assert timezone.now() == NOW


def test_the_home_lists_feed_sources_whose_last_fetch_failed(client):
    from articles.models import FeedFetch, FeedSource

    broken = FeedSource.objects.create(
        name="Portal English", url="https://portal.example.com/rss", language="en"
    )
    fixed = FeedSource.objects.create(
        name="Portal Chinese", url="https://portal.example.com/zh", language="zh-hans"
    )
    FeedFetch.objects.create(source=broken, at=NOW - timedelta(hours=2), new=3)
    FeedFetch.objects.create(
        source=broken, at=NOW - timedelta(hours=1), error="HTTP 503 from the portal"
    )
    FeedFetch.objects.create(source=fixed, at=NOW - timedelta(hours=2), error="timed out")
    FeedFetch.objects.create(source=fixed, at=NOW - timedelta(hours=1), new=1)
    client.force_login(StaffUserFactory(is_superuser=True))
    page = client.get("/admin/").content.decode()
    feeds = page[page.index('id="dashboard-feeds"') :]
    feeds = feeds[: feeds.index("</div>")]
    assert (
        f'href="/admin/articles/feedsource/{broken.pk}/change/">Portal English</a>: HTTP 503 from the portal'
        in feeds
    )
    assert "Portal Chinese" not in feeds
