"""List health's weekly losses and backlog, as the event applier keeps them and an editor sees them."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from anymail.signals import AnymailTrackingEvent
from django.apps import apps
from django.contrib.auth.models import User
from django.urls import reverse

from newsletter.models import Delivery, Issue, Subscriber, TrackingEvent, WeeklyTally
from newsletter.services.esp_events import tracking_event_store
from newsletter.services.list_hygiene import tracking_events_apply
from tests.factories import DeliveryFactory, IssueFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # a Monday
THIS_WEEK = NOW.date()
LAST_WEEK = THIS_WEEK - timedelta(days=7)


@pytest.fixture
def chief(client):
    client.force_login(User.objects.create_superuser("chief", password="x"))
    return client


@pytest.fixture
def deliveries() -> list[Delivery]:
    issue = IssueFactory(number=50, status=Issue.Status.SENT, sent_at=NOW - timedelta(days=8))
    return DeliveryFactory.create_batch(4, issue=issue)


def report(delivery: Delivery, event_type: str, *, event_id: str, **fields) -> None:
    """Store an event as the ESP's webhook would."""
    tracking_event_store(
        event=AnymailTrackingEvent(
            event_type=event_type,
            event_id=event_id,
            message_id=delivery.esp_message_id,
            recipient=delivery.subscriber.email,
            metadata={"delivery": delivery.pk, "subscriber": delivery.subscriber_id},
            esp_event={},
            **fields,
        ),
        esp_name="postmark",
    )


def weeks_shown(client) -> dict:
    response = client.get(reverse("newsletter_reports:health"))
    assert response.status_code == 200
    return {w.start: (w.bounced, w.complained) for w in response.context["report"].weeks}


@time_machine.travel(NOW)
def test_readers_bounced_and_complained_count_in_the_week_their_event_arrived(chief, deliveries):
    first, second, third, _ = deliveries
    with time_machine.travel(NOW - timedelta(days=6)):
        report(first, "bounced", event_id="b-1", mta_response="550 5.1.1 no such user")
        report(second, "complained", event_id="c-1")
        tracking_events_apply()
    report(third, "bounced", event_id="b-2", mta_response="550 5.1.1 no such user")
    report(third, "bounced", event_id="b-2", mta_response="550 5.1.1 no such user")  # a retry
    tracking_events_apply()
    shown = weeks_shown(chief)
    assert shown[LAST_WEEK] == (1, 1)
    assert shown[THIS_WEEK] == (1, 0)
    assert Subscriber.objects.get(pk=third.subscriber_id).status == Subscriber.Status.BOUNCED


@time_machine.travel(NOW)
def test_an_event_that_changes_no_reader_adds_no_loss(chief, deliveries):
    first = deliveries[0]
    report(first, "bounced", event_id="b-1", mta_response="550 5.1.1 no such user")
    report(first, "bounced", event_id="b-2", mta_response="550 5.1.1 no such user")  # again
    report(first, "opened", event_id="o-1")
    tracking_events_apply()
    assert weeks_shown(chief)[THIS_WEEK] == (1, 0)


@time_machine.travel(NOW)
def test_the_backlog_of_events_not_yet_applied_shows_in_list_health(chief, deliveries):
    for n, delivery in enumerate(deliveries[:3]):
        report(delivery, "opened", event_id=f"o-{n}")
    page = chief.get(reverse("newsletter_reports:health")).content.decode()
    assert 'id="backlog"' in page
    assert '<span class="figure">3</span>' in page
    tracking_events_apply()
    page = chief.get(reverse("newsletter_reports:health")).content.decode()
    assert '<span class="figure">0</span>' in page


@time_machine.travel(NOW)
def test_the_weeks_before_the_rollup_are_counted_from_the_events_once(deliveries):
    first, second, _, _ = deliveries
    for delivery, outcome, when in (
        (first, TrackingEvent.Outcome.BOUNCED, NOW - timedelta(days=6)),
        (second, TrackingEvent.Outcome.COMPLAINED, NOW),
    ):
        with time_machine.travel(when):
            TrackingEvent.objects.create(
                esp="postmark",
                event_type=outcome,
                delivery=delivery,
                processed_at=when,
                outcome=outcome,
            )
    migration = importlib.import_module("newsletter.migrations.0016_issue16_weekly_tally")
    migration.fill_from_events(apps, None)
    rows = WeeklyTally.objects.order_by("week").values_list("week", "bounced", "complained")
    assert list(rows) == [(LAST_WEEK, 1, 0), (THIS_WEEK, 0, 1)]
