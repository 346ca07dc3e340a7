"""Tracking events applied in bulk: one batch, one lookup, counters and tallies as the ledger says."""

from __future__ import annotations

from datetime import timedelta

import pytest
from anymail.signals import AnymailTrackingEvent
from django.contrib.auth.models import User
from django.urls import reverse

from newsletter.models import Delivery, IssueTally, Subscriber, TrackingEvent
from newsletter.services.esp_events import tracking_event_delivery, tracking_event_store
from newsletter.services.list_hygiene import tracking_events_apply, tracking_events_drain
from newsletter.services.tallies import issue_tally_rebuild
from tests.conftest import SENT_AT
from tests.factories import DeliveryFactory

pytestmark = pytest.mark.django_db
T0 = SENT_AT  # when sent_issue went out
ARTICLE = "https://portal.example.com/beltandroad/gwadar.html"
_ids = iter(range(1, 10**6))


def store(delivery: Delivery | None, event_type: str, *, when=T0, **fields) -> TrackingEvent:
    """Store one event as the webhook does; it waits for the applier."""
    event = {
        "event_type": event_type,
        "event_id": f"bulk-{next(_ids)}",
        "timestamp": when,
        "esp_event": {},
    }
    if delivery is not None:
        event |= {
            "message_id": delivery.esp_message_id,
            "recipient": delivery.subscriber.email,
            "metadata": {
                "delivery": str(delivery.pk),
                "issue": str(delivery.issue_id),
                "subscriber": str(delivery.subscriber_id),
            },
        }
    event |= fields
    return tracking_event_store(event=AnymailTrackingEvent(**event), esp_name="Mailgun")


def test_a_batch_of_opens_and_clicks_is_applied_at_once_with_counters_and_first_times(sent_issue):
    first, second = DeliveryFactory.create_batch(2, issue=sent_issue)
    store(first, "opened", when=T0 + timedelta(hours=2))
    store(first, "opened", when=T0 + timedelta(hours=1))  # arrived late, happened first
    store(first, "clicked", when=T0 + timedelta(hours=3), click_url=f"{ARTICLE}?utm_source=nl")
    store(second, "clicked", when=T0 + timedelta(hours=4), click_url=ARTICLE)
    store(second, "delivered")

    done = tracking_events_apply(limit=500)

    assert (done.applied, done.waiting) == (5, 0)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.open_count, first.opened_at) == (2, T0 + timedelta(hours=1))
    assert (first.click_count, first.clicked_at) == (1, T0 + timedelta(hours=3))
    # A click proves the email was opened, but counts no extra open.
    assert (second.open_count, second.opened_at, second.click_count) == (
        0,
        T0 + timedelta(hours=4),
        1,
    )
    assert not TrackingEvent.objects.filter(processed_at__isnull=True).exists()
    assert set(TrackingEvent.objects.values_list("delivery_id", flat=True)) == {
        first.pk,
        second.pk,
    }


def test_the_applier_keeps_the_issue_tally_equal_to_a_count_of_the_ledger(sent_issue):
    rows = DeliveryFactory.create_batch(6, issue=sent_issue)
    issue_tally_rebuild(issue=sent_issue)  # built once, as the first report after the send does
    store(rows[0], "opened")
    store(rows[0], "opened")
    store(rows[1], "clicked", click_url=ARTICLE)
    store(rows[1], "clicked", click_url=f"{ARTICLE}#top")
    store(rows[2], "clicked", click_url=ARTICLE)
    store(rows[3], "bounced", esp_event={"event-data": {"delivery-status": {"code": 550}}})
    store(rows[4], "complained")
    store(rows[5], "opened")
    store(rows[5], "bounced", esp_event={"event-data": {"delivery-status": {"code": 550}}})

    tracking_events_drain()

    kept = IssueTally.objects.get(issue=sent_issue)
    counted = issue_tally_rebuild(issue=sent_issue)
    figures = [
        "accepted",
        "delivered",
        "bounced",
        "hard_bounces",
        "complained",
        "complaints",
        "opened",
        "clicked",
        "opens",
        "clicks",
    ]
    assert [getattr(kept, name) for name in figures] == [getattr(counted, name) for name in figures]
    assert kept.links == counted.links == {ARTICLE: [3, 2]}  # 3 clicks by 2 readers
    assert (kept.bounced, kept.complained, kept.opened, kept.clicked) == (2, 1, 3, 2)


def test_queries_per_batch_do_not_grow_with_the_batch(sent_issue, django_assert_max_num_queries):
    def apply(n: int) -> int:
        for delivery in DeliveryFactory.create_batch(n, issue=sent_issue):
            store(delivery, "opened")
            store(delivery, "clicked", click_url=ARTICLE)
        with django_assert_max_num_queries(20) as captured:
            assert tracking_events_apply(limit=500).applied == 2 * n
        return len(captured.captured_queries)

    assert apply(40) <= apply(3)


def test_a_status_change_for_a_delivery_still_sending_waits_while_the_rest_are_applied(sent_issue):
    sending = DeliveryFactory(issue=sent_issue, status=Delivery.Status.SENDING)
    sent = DeliveryFactory(issue=sent_issue)
    bounce = store(sending, "bounced", esp_event={"event-data": {"delivery-status": {"code": 550}}})
    store(sent, "opened")

    done = tracking_events_drain()

    assert (done.applied, done.waiting) == (1, 1)
    bounce.refresh_from_db()
    assert bounce.processed_at is None
    assert Subscriber.objects.get(pk=sending.subscriber_id).status == "active"
    Delivery.objects.filter(pk=sending.pk).update(status=Delivery.Status.SENT)  # batch settled
    assert tracking_events_drain().applied == 1
    assert Subscriber.objects.get(pk=sending.subscriber_id).status == "bounced"


def test_without_metadata_the_message_id_and_the_recipient_find_the_delivery(sent_issue):
    # One Mailgun batch call: one message id for all its recipients.
    rows = DeliveryFactory.create_batch(
        3, issue=sent_issue, esp_message_id="<batch-1@mg.example.com>"
    )
    event = store(
        None,
        "opened",
        message_id="<batch-1@mg.example.com>",
        recipient=rows[1].subscriber.email.upper(),
    )
    assert tracking_event_delivery(event=event) == rows[1]
    tracking_events_apply()
    assert Delivery.objects.get(pk=rows[1].pk).open_count == 1
    assert Delivery.objects.filter(open_count=1).count() == 1


def test_list_health_shows_the_events_waiting_to_be_applied(client, sent_issue):
    delivery = DeliveryFactory(issue=sent_issue)
    for _ in range(3):
        store(delivery, "opened")
    client.force_login(User.objects.create_superuser("chief", password="x"))
    page = client.get(reverse("newsletter_reports:health"))
    assert page.context["report"].backlog == 3
    assert "Tracking events waiting" in page.content.decode()
    tracking_events_drain()
    assert client.get(reverse("newsletter_reports:health")).context["report"].backlog == 0
