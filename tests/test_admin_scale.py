"""Admin pages at a million readers: a bounded number of queries, no whole-table counts.

Timings are measured in bench/scale.py (make bench-scale), never asserted here; these
tests pin what makes them possible: queries per page that do not grow with the list,
estimates instead of counts once a table is big, and searches that find the reader.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from newsletter.admin import scale
from newsletter.models import Issue, TrackingEvent
from tests.conftest import SENT_AT
from tests.factories import DeliveryFactory, SubscriberFactory

pytestmark = pytest.mark.django_db
T0 = SENT_AT  # when sent_issue went out
MAX_QUERIES = 15


@pytest.fixture
def chief(client):
    client.force_login(User.objects.create_superuser("chief", password="x"))
    return client


@pytest.fixture
def big(monkeypatch):
    """Make every table look like a million rows, as PostgreSQL's statistics would say."""
    monkeypatch.setattr(scale, "table_rows_estimate", lambda model: 1_000_000)


@pytest.fixture
def opened_issue(sent_issue) -> Issue:
    """conftest's sent issue with 30 readers, each of whom opened it."""
    for delivery in DeliveryFactory.create_batch(30, issue=sent_issue):
        TrackingEvent.objects.create(
            esp="mailgun", event_type="opened", delivery=delivery, processed_at=T0
        )
    return sent_issue


def pages(issue: Issue) -> list[str]:
    subscribers = reverse("admin:newsletter_subscriber_changelist")
    deliveries = reverse("admin:newsletter_delivery_changelist")
    events = reverse("admin:newsletter_trackingevent_changelist")
    return [
        subscribers,
        f"{subscribers}?status__exact=active",
        f"{subscribers}?q=reader1",
        deliveries,
        f"{deliveries}?issue__id__exact={issue.pk}",
        events,
        f"{events}?event_type=opened",
        reverse("newsletter_reports:issue", args=[issue.pk]),
        reverse("newsletter_reports:health"),
    ]


def test_every_list_and_report_takes_at_most_15_queries_at_scale(
    chief, opened_issue, big, django_assert_max_num_queries
):
    for url in pages(opened_issue):
        with django_assert_max_num_queries(MAX_QUERIES, info=url):
            assert chief.get(url).status_code == 200


def test_the_queries_do_not_grow_with_the_list(chief, opened_issue, big):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def counts() -> list[int]:
        found = []
        for url in pages(opened_issue):
            with CaptureQueriesContext(connection) as captured:
                chief.get(url)
            found.append(len(captured.captured_queries))
        return found

    counts()  # the first report after the send builds the issue's tally
    before = counts()
    for delivery in DeliveryFactory.create_batch(60, issue=opened_issue):
        TrackingEvent.objects.create(
            esp="mailgun", event_type="opened", delivery=delivery, processed_at=T0
        )
    assert counts() == before


def test_a_big_list_shows_no_facet_counts_and_an_estimated_total(chief, big):
    SubscriberFactory.create_batch(3)
    page = chief.get(reverse("admin:newsletter_subscriber_changelist")).content.decode()
    assert "Active (3)" not in page
    assert "1000000 subscribers" in page or "1,000,000 subscribers" in page


def test_a_whole_address_finds_its_reader_whatever_the_case(chief, big):
    SubscriberFactory(email="li.wei@example.cn")
    SubscriberFactory(email="li.weiming@example.cn")
    url = reverse("admin:newsletter_subscriber_changelist")
    page = chief.get(url, {"q": "Li.Wei@Example.CN"}).content.decode()
    assert "li.wei@example.cn" in page and "li.weiming@example.cn" not in page
    page = chief.get(url, {"q": "li.wei"}).content.decode()  # part of an address: substring
    assert "li.wei@example.cn" in page and "li.weiming@example.cn" in page


def test_the_event_list_filters_by_esp_and_event_without_reading_every_event(chief, opened_issue):
    page = chief.get(reverse("admin:newsletter_trackingevent_changelist")).content.decode()
    assert "?esp=mailgun" in page and "?event_type=clicked" in page
    page = chief.get(
        reverse("admin:newsletter_trackingevent_changelist"), {"event_type": "clicked"}
    ).content.decode()
    assert "0 tracking events" in page
