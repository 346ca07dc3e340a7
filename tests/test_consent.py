"""Consent records: who agreed to which text, when, from where, and when and how they left."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from newsletter.models import ConsentRecord, ConsentText, Delivery, Subscriber
from newsletter.services.subscriber_csv import subscribers_import
from newsletter.services.subscribers import consent_text_publish
from newsletter.tasks import purge_unconfirmed_signups
from newsletter.tokens import reader_tokens
from tests.factories import IssueFactory, SubscriberFactory, default_newsletter
from tests.reader_steps import (
    SUBSCRIBE,
    admin_client,  # noqa: F401 - the fixture: a superuser whose requests commit
    client,  # noqa: F401 - the fixture: requests that commit
    link,
    signup_data,
)

pytestmark = pytest.mark.django_db


def test_the_whole_life_of_a_subscription_is_recorded(client):
    client.post(SUBSCRIBE, signup_data(), REMOTE_ADDR="203.0.113.1", HTTP_USER_AGENT="Firefox/140")
    client.post(
        link(mail.outbox[0], "/newsletter/confirm/"),
        REMOTE_ADDR="203.0.113.2",
        HTTP_USER_AGENT="Mail app",
    )
    reader = Subscriber.objects.get()
    unsubscribe = f"/newsletter/unsubscribe/{reader_tokens.make_token(reader, 'unsubscribe')}/"
    client.post(unsubscribe, {"List-Unsubscribe": "One-Click"}, REMOTE_ADDR="198.51.100.3")

    signup, confirm, withdraw = reader.consent_records.order_by("at", "id")
    assert (signup.action, signup.ip, signup.user_agent, signup.form) == (
        "signup",
        "203.0.113.1",
        "Firefox/140",
        "subscribe-page",
    )
    assert signup.consent_text.version == 1
    assert (confirm.action, confirm.ip, confirm.consent_text_id) == (
        "confirm",
        "203.0.113.2",
        signup.consent_text_id,
    )
    assert (withdraw.action, withdraw.method, withdraw.ip) == (
        "withdraw",
        "one-click",
        "198.51.100.3",
    )
    assert signup.at <= confirm.at <= withdraw.at


def test_a_new_consent_text_is_a_new_version_and_old_records_keep_theirs(client):
    newsletter = default_newsletter()
    old_text = newsletter.consent_texts.get(version=1).text
    client.post(SUBSCRIBE, signup_data(email="early@example.com"))
    new = consent_text_publish(newsletter=newsletter, text="Send me the weekly. (v2 wording)")
    assert new.version == 2
    page = client.get(SUBSCRIBE).content.decode()
    assert "Send me the weekly. (v2 wording)" in page
    assert 'name="consent_version" value="2"' in page
    client.post(SUBSCRIBE, signup_data(email="later@example.com", consent_version="2"))

    early = ConsentRecord.objects.get(subscriber__email="early@example.com")
    later = ConsentRecord.objects.get(subscriber__email="later@example.com")
    assert (early.consent_text.version, early.consent_text.text) == (1, old_text)
    assert (later.consent_text.version, later.consent_text.text) == (
        2,
        "Send me the weekly. (v2 wording)",
    )


def test_admin_adds_a_consent_text_as_the_next_version_and_cannot_edit_one(admin_client):
    newsletter = default_newsletter()
    response = admin_client.post(
        "/admin/newsletter/consenttext/add/",
        {"newsletter": newsletter.pk, "text": "New wording.", "privacy_url": ""},
    )
    assert response.status_code == 302
    assert list(newsletter.consent_texts.values_list("version", "text")) == [
        (2, "New wording."),
        (1, newsletter.consent_texts.get(version=1).text),
    ]
    v1 = newsletter.consent_texts.get(version=1)
    admin_client.post(
        f"/admin/newsletter/consenttext/{v1.pk}/change/",
        {"newsletter": newsletter.pk, "text": "Rewritten history", "privacy_url": ""},
    )
    v1.refresh_from_db()
    assert v1.text != "Rewritten history"


def test_admin_shows_a_readers_consent_history(client, admin_client):
    client.post(SUBSCRIBE, signup_data(), REMOTE_ADDR="203.0.113.77")
    reader = Subscriber.objects.get()
    page = admin_client.get(f"/admin/newsletter/subscriber/{reader.pk}/change/").content.decode()
    assert "Consent history" in page
    assert "203.0.113.77" in page
    assert "Signed up" in page and "v1" in page


def test_withdrawal_records_how_for_each_way_out(client, admin_client):
    ways = {}
    for way in ("preferences", "admin", "link"):
        client.post(SUBSCRIBE, signup_data(email=f"{way}@example.com"))
    Subscriber.objects.update(status="active")
    readers = {r.email.split("@")[0]: r for r in Subscriber.objects.all()}
    client.post(
        f"/newsletter/preferences/{reader_tokens.make_token(readers['preferences'], 'preferences')}/",
        {"action": "unsubscribe"},
    )
    admin_client.post(
        "/admin/newsletter/subscriber/",
        {"action": "unsubscribe", "_selected_action": [readers["admin"].pk]},
    )
    client.post(
        f"/newsletter/unsubscribe/{reader_tokens.make_token(readers['link'], 'unsubscribe')}/"
    )
    for way, reader in readers.items():
        ways[way] = reader.consent_records.get(action="withdraw").method
    assert ways == {"preferences": "preferences", "admin": "admin", "link": "link"}


def test_confirming_an_imported_reader_records_the_text_shown_on_the_confirm_page(
    client, run_on_commit
):
    newsletter = default_newsletter()
    consent_text_publish(newsletter=newsletter, text="Current wording v2.")
    with run_on_commit():
        subscribers_import(newsletter=newsletter, source="email\nimported@example.com\n")
    confirm = link(mail.outbox[0], "/newsletter/confirm/")
    assert b"Current wording v2." in client.get(confirm).content
    client.post(confirm)
    record = ConsentRecord.objects.get(action="confirm")
    assert record.consent_text == ConsentText.objects.get(version=2)
    assert record.form == "import"


def test_signups_nobody_confirmed_are_deleted_after_the_purge_period(settings):
    settings.NEWSLETTER_PENDING_PURGE_DAYS = 30
    now = timezone.now()
    with time_machine.travel(now - timedelta(days=31)):
        stale = SubscriberFactory(status=Subscriber.Status.PENDING, confirmed_at=None)
        returning = SubscriberFactory(status=Subscriber.Status.PENDING, confirmed_at=None)
        Delivery.objects.create(issue=IssueFactory(), subscriber=returning, status="sent")
        active = SubscriberFactory()
    fresh = SubscriberFactory(status=Subscriber.Status.PENDING, confirmed_at=None)
    assert purge_unconfirmed_signups.delay().get() == 1
    remaining = set(Subscriber.objects.values_list("pk", flat=True))
    assert stale.pk not in remaining
    assert {returning.pk, active.pk, fresh.pk} <= remaining
