"""Admin for readers: counts by status, search, and the resend, unsubscribe and erase actions."""

from __future__ import annotations

import pytest
from django.core import mail

from newsletter.models import Subscriber, Suppression
from newsletter.selectors.subscribers import consent_text_current
from newsletter.services.subscribers import Profile, subscriber_signup
from tests.factories import SubscriberFactory, default_newsletter
from tests.reader_steps import admin_client, sent_to  # noqa: F401 - admin_client is a fixture

pytestmark = pytest.mark.django_db
LIST = "/admin/newsletter/subscriber/"


def test_the_list_filters_by_status_with_counts_and_searches(admin_client):
    SubscriberFactory.create_batch(3)
    SubscriberFactory(email="pending@example.com", status="pending")
    page = admin_client.get(LIST).content.decode()
    assert "Active (3)" in page and "Pending confirmation (1)" in page
    page = admin_client.get(LIST, {"status__exact": "pending"}).content.decode()
    assert "pending@example.com" in page and "reader" not in page.split("result_list")[1]
    page = admin_client.get(LIST, {"q": "pending@"}).content.decode()
    assert "1 result" in page


def test_resend_confirmation_sends_even_within_the_day_and_skips_active_readers(admin_client):
    newsletter = default_newsletter()
    subscriber_signup(
        newsletter=newsletter,
        email="pending@example.com",
        profile=Profile(),
        consent_text=consent_text_current(newsletter=newsletter),
        ip=None,
        user_agent="",
        form="test",
    )
    pending = Subscriber.objects.get(email="pending@example.com")
    active = SubscriberFactory()
    response = admin_client.post(
        LIST,
        {"action": "resend_confirmation", "_selected_action": [pending.pk, active.pk]},
        follow=True,
    )
    assert "Sent 1 confirmation." in response.content.decode()
    assert "1 skipped" in response.content.decode()
    assert len(sent_to("pending@example.com")) == 1
    assert sent_to(active.email) == []


def test_unsubscribe_action_records_the_admin_as_how(admin_client):
    reader = SubscriberFactory()
    admin_client.post(LIST, {"action": "unsubscribe", "_selected_action": [reader.pk]})
    reader.refresh_from_db()
    assert reader.status == "unsubscribed"
    assert reader.consent_records.get().method == "admin"


def test_erase_asks_first_then_erases(admin_client):
    reader = SubscriberFactory(email="gone@example.com", name="Gone")
    response = admin_client.post(LIST, {"action": "erase", "_selected_action": [reader.pk]})
    assert response.status_code == 200
    assert "Erase these readers?" in response.content.decode()
    assert "gone@example.com" in response.content.decode()
    reader.refresh_from_db()
    assert reader.status == "active"

    admin_client.post(LIST, {"action": "erase", "_selected_action": [reader.pk], "confirm": "yes"})
    reader.refresh_from_db()
    assert (reader.status, reader.name) == ("erased", "")
    assert Suppression.objects.get().reason == "erased"


def test_admin_cannot_add_a_suppressed_address_by_hand(admin_client):
    reader = SubscriberFactory(email="gone@example.com")
    admin_client.post(LIST, {"action": "erase", "_selected_action": [reader.pk], "confirm": "yes"})
    response = admin_client.post(
        "/admin/newsletter/subscriber/add/",
        {
            "newsletter": reader.newsletter_id,
            "email": "Gone@Example.com",
            "status": "active",
            "language": "en",
            "consent_records-TOTAL_FORMS": "0",
            "consent_records-INITIAL_FORMS": "0",
        },
    )
    assert "This address is suppressed" in response.content.decode()
    assert not Subscriber.objects.filter(email="gone@example.com").exists()
    assert mail.outbox == []
