"""The list-hygiene policy: what bounces, complaints, unsubscribes, opens and clicks do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from anymail.signals import AnymailTrackingEvent
from django.core import mail
from django.core.management import call_command

from newsletter.models import ConsentRecord, Delivery, Subscriber, Suppression, TrackingEvent
from newsletter.services.esp_events import tracking_event_store
from newsletter.services.list_hygiene import (
    DeliveryNotSettled,
    tracking_event_process,
    tracking_events_forget,
)
from newsletter.suppression import email_hash, is_suppressed
from newsletter.tasks import process_stale_tracking_events
from tests.factories import (
    ArticleFactory,
    DeliveryFactory,
    IssueFactory,
    IssueItemFactory,
    SubscriberFactory,
)
from tests.test_webhooks_mailgun import MailgunFormat
from tests.webhook_steps import SECRET, Target, post

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
_ids = iter(range(1, 10**6))


def store(esp: str = "Postmark", **event) -> TrackingEvent:
    """Store one event as the webhook would; anymail's fields as keyword arguments."""
    event.setdefault("event_id", f"evt-{next(_ids)}")
    event.setdefault("esp_event", {})
    return tracking_event_store(event=AnymailTrackingEvent(**event), esp_name=esp)


def report(
    delivery: Delivery,
    event_type: str,
    *,
    esp: str = "Postmark",
    raw: dict | None = None,
    when: datetime = T0,
    recipient: str | None = None,
    wait_for_send: bool = False,
    **fields,
) -> TrackingEvent:
    """Store and process one event about `delivery`, as the webhook and its task would."""
    stored = store(
        esp,
        event_type=event_type,
        timestamp=when,
        message_id=delivery.esp_message_id,
        recipient=delivery.subscriber.email if recipient is None else recipient,
        metadata={"delivery": str(delivery.pk)},
        esp_event=raw or {},
        **fields,
    )
    tracking_event_process(event_id=stored.pk, wait_for_send=wait_for_send)
    stored.refresh_from_db()
    return stored


def soft(delivery: Delivery, **kwargs) -> TrackingEvent:
    return report(delivery, "bounced", raw={"Type": "SoftBounce"}, **kwargs)


def hard(delivery: Delivery, **kwargs) -> TrackingEvent:
    return report(delivery, "bounced", raw={"Type": "HardBounce"}, **kwargs)


def status_of(subscriber: Subscriber) -> str:
    return Subscriber.objects.get(pk=subscriber.pk).status


def test_three_soft_bounces_in_a_row_across_issues_suppress_the_reader():
    reader = SubscriberFactory()
    first, second, third = (DeliveryFactory(subscriber=reader) for _ in range(3))
    soft(first)
    soft(second)
    assert status_of(reader) == "active"
    assert Subscriber.objects.get(pk=reader.pk).soft_bounce_count == 2
    event = soft(third)
    assert (status_of(reader), event.outcome) == ("bounced", "bounced")
    assert is_suppressed(newsletter=reader.newsletter, email=reader.email)


def test_an_issue_that_went_through_breaks_the_run_of_soft_bounces():
    reader = SubscriberFactory()
    first, fine, second, third = (DeliveryFactory(subscriber=reader) for _ in range(4))
    soft(first)
    report(fine, "delivered")
    soft(second)
    soft(third)
    assert status_of(reader) == "active"
    assert Subscriber.objects.get(pk=reader.pk).soft_bounce_count == 2


def test_an_open_resets_the_count_shown_for_soft_bounces():
    reader = SubscriberFactory()
    bounced, later = DeliveryFactory(subscriber=reader), DeliveryFactory(subscriber=reader)
    soft(bounced)
    report(later, "opened")
    assert Subscriber.objects.get(pk=reader.pk).soft_bounce_count == 0


def test_repeated_soft_bounce_events_for_one_email_count_once():
    reader = SubscriberFactory()
    delivery = DeliveryFactory(subscriber=reader)
    for _ in range(4):
        soft(delivery)
    assert (status_of(reader), Subscriber.objects.get(pk=reader.pk).soft_bounce_count) == (
        "active",
        1,
    )


def test_the_soft_bounce_limit_is_configurable_and_zero_never_suppresses(settings):
    settings.NEWSLETTER_SOFT_BOUNCE_LIMIT = 0
    reader = SubscriberFactory()
    for _ in range(5):
        soft(DeliveryFactory(subscriber=reader))
    assert status_of(reader) == "active"


def test_a_hard_bounce_can_leave_the_suppression_list_alone_when_configured(settings):
    settings.NEWSLETTER_SUPPRESS_BOUNCED = False
    delivery = DeliveryFactory()
    hard(delivery)
    assert status_of(delivery.subscriber) == "bounced"
    assert Suppression.objects.count() == 0


def test_a_complaint_from_an_unsubscribed_reader_still_suppresses_without_a_new_withdrawal():
    reader = SubscriberFactory(status=Subscriber.Status.UNSUBSCRIBED)
    report(DeliveryFactory(subscriber=reader), "complained")
    assert status_of(reader) == "complained"
    assert is_suppressed(newsletter=reader.newsletter, email=reader.email)
    assert not ConsentRecord.objects.filter(subscriber=reader).exists()


def test_a_rejection_for_the_esps_bounce_list_mirrors_the_bounce_but_fails_the_delivery():
    delivery = DeliveryFactory()
    event = report(delivery, "rejected", esp="SendGrid", reject_reason="bounced")
    delivery.refresh_from_db()
    assert (delivery.status, status_of(delivery.subscriber)) == ("failed", "bounced")
    assert event.outcome == "bounced"


def test_a_rejection_for_the_esps_unsubscribe_list_unsubscribes_the_reader():
    delivery = DeliveryFactory()
    report(delivery, "rejected", esp="SparkPost", reject_reason="unsubscribed")
    assert status_of(delivery.subscriber) == "unsubscribed"


def test_a_send_the_esp_could_not_make_fails_the_delivery_and_spares_the_reader():
    delivery = DeliveryFactory()
    report(delivery, "failed", description="Template rendering failed")
    delivery.refresh_from_db()
    assert (delivery.status, status_of(delivery.subscriber)) == ("failed", "active")
    assert "Template rendering failed" in delivery.last_error


def test_a_deferral_or_an_esp_resubscription_changes_nothing():
    reader = SubscriberFactory(status=Subscriber.Status.UNSUBSCRIBED)
    delivery = DeliveryFactory(subscriber=reader)
    report(delivery, "deferred")
    report(delivery, "subscribed")  # coming back takes our own double opt-in
    delivery.refresh_from_db()
    assert (delivery.status, status_of(reader)) == ("sent", "unsubscribed")


def test_opens_and_clicks_keep_the_first_time_and_count_every_one():
    delivery = DeliveryFactory()
    report(delivery, "opened", when=T0 + timedelta(hours=2))
    report(delivery, "opened", when=T0)  # arrives late, happened first
    report(delivery, "clicked", when=T0 + timedelta(hours=3), click_url="https://x.example/a")
    report(delivery, "clicked", when=T0 + timedelta(hours=1), click_url="https://x.example/b")
    delivery.refresh_from_db()
    assert (delivery.open_count, delivery.opened_at) == (2, T0)
    assert (delivery.click_count, delivery.clicked_at) == (2, T0 + timedelta(hours=1))


def test_an_event_for_an_erased_reader_does_not_bring_them_back_or_keep_their_address():
    reader = SubscriberFactory(email="erased-41@invalid", status=Subscriber.Status.ERASED)
    delivery = DeliveryFactory(subscriber=reader)
    for event_type in ("complained", "unsubscribed", "opened"):
        event = report(delivery, event_type, recipient="li.wei@example.com")
        assert (event.outcome, event.payload, event.mta_response) == ("erased", {}, "")
    hard(delivery, recipient="li.wei@example.com", mta_response="550 li.wei@example.com unknown")
    assert status_of(reader) == "erased"
    assert not ConsentRecord.objects.filter(subscriber=reader).exists()
    assert Suppression.objects.count() == 0
    stored = list(TrackingEvent.objects.values_list("payload", "mta_response", "description"))
    assert "li.wei" not in repr(stored)


def test_forgetting_a_reader_drops_what_their_events_kept():
    delivery = DeliveryFactory()
    report(delivery, "clicked", click_url="https://portal.example.com/a")
    assert tracking_events_forget(subscriber=delivery.subscriber) == 1
    event = TrackingEvent.objects.get()
    assert (event.payload, event.click_url) == ({}, "")


def test_a_bounce_for_an_address_the_reader_has_since_changed_leaves_the_reader_alone():
    reader = SubscriberFactory(email="new@example.com")
    delivery = DeliveryFactory(subscriber=reader)
    hard(delivery, recipient="old@example.com")
    assert status_of(reader) == "active"
    assert Suppression.objects.get().email_hash == email_hash("old@example.com")


def test_a_bounce_while_the_batch_is_still_sending_waits_and_changes_nothing():
    delivery = DeliveryFactory(status=Delivery.Status.SENDING)
    stored = store(
        "Postmark",
        event_type="bounced",
        event_id="early-bounce",
        message_id=delivery.esp_message_id,
        recipient=delivery.subscriber.email,
        esp_event={"Type": "HardBounce"},
    )
    with pytest.raises(DeliveryNotSettled):
        tracking_event_process(event_id=stored.pk, wait_for_send=True)
    stored.refresh_from_db()
    assert (stored.processed_at, status_of(delivery.subscriber)) == (None, "active")


def test_an_event_whose_task_was_lost_is_processed_by_the_sweep():
    delivery = DeliveryFactory()
    stored = store(
        "Postmark",
        event_type="complained",
        event_id="lost",
        message_id=delivery.esp_message_id,
        recipient=delivery.subscriber.email,
        esp_event={},
    )
    TrackingEvent.objects.filter(pk=stored.pk).update(received_at=T0 - timedelta(hours=1))
    process_stale_tracking_events()
    assert status_of(delivery.subscriber) == "complained"


def test_metadata_that_does_not_hang_together_is_not_acted_on():
    delivery = DeliveryFactory()
    other = SubscriberFactory()
    stored = store(
        "Mailgun",
        event_type="complained",
        event_id="mixed-up",
        message_id="",
        recipient=other.email,
        metadata={"delivery": str(delivery.pk), "subscriber": str(other.pk)},
        esp_event={},
    )
    tracking_event_process(event_id=stored.pk)
    assert (status_of(delivery.subscriber), status_of(other)) == ("active", "active")


def test_a_bounce_posted_the_way_mailgun_posts_it_keeps_the_reader_out_of_the_next_issue(
    client, settings, run_on_commit
):
    """Done means: the bounce suppresses the reader before the next issue."""
    settings.NEWSLETTER_WEBHOOK_ESPS = ["mailgun"]  # the ESP this newsroom sends through
    settings.ANYMAIL = {
        **settings.ANYMAIL,
        "WEBHOOK_SECRET": SECRET,
        **MailgunFormat.settings,
    }
    gone, stays = SubscriberFactory(), SubscriberFactory()
    this_week = IssueFactory(number=48)
    IssueItemFactory(issue=this_week, article=ArticleFactory(title="Gwadar port opens"))
    with run_on_commit():
        call_command("send_issue", "48", stdout=StringIO())
    assert len(mail.outbox) == 2
    delivery = Delivery.objects.get(issue=this_week, subscriber=gone)

    body = MailgunFormat().body("hard_bounce", Target.of(delivery), event_id="gone")
    with run_on_commit():
        assert post(client, MailgunFormat(), body).status_code == 200

    next_week = IssueFactory(number=49, week="2026-W49")
    IssueItemFactory(issue=next_week, article=ArticleFactory(title="Chancay port expands"))
    mail.outbox.clear()
    with run_on_commit():
        call_command("send_issue", "49", stdout=StringIO())
    assert [m.to for m in mail.outbox] == [[stays.email]]
    assert not Delivery.objects.filter(issue=next_week, subscriber=gone).exists()


def test_a_bounce_of_an_email_that_carries_only_the_reader_id_bounces_that_reader():
    # The sunset re-permission email carries {"subscriber": id} and no delivery.
    reader = SubscriberFactory()
    stored = store(
        "Postmark",
        event_type="bounced",
        event_id="repermission-bounce",
        message_id="<not-a-digest@mg.example.com>",
        recipient=reader.email,
        metadata={"subscriber": str(reader.pk)},
        esp_event={"Type": "HardBounce"},
    )
    tracking_event_process(event_id=stored.pk)
    assert status_of(reader) == "bounced"
