"""The preferences page: details, sections, address, pause, data download, unsubscribe, erase."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from newsletter.models import (
    ConsentRecord,
    Delivery,
    Subscriber,
    Suppression,
    TrackingEvent,
)
from newsletter.services.subscriber_csv import subscribers_import
from newsletter.suppression import email_hash
from newsletter.tokens import reader_tokens
from tests.factories import CategoryFactory, IssueFactory, SubscriberFactory, default_newsletter
from tests.reader_steps import (
    SUBSCRIBE,
    client,  # noqa: F401 - the fixture: requests that commit
    link,
    sent_to,
    signup_data,
    without_csrf,
)
from tests.sending_steps import ledger

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader():
    return SubscriberFactory(
        email="amina@example.com", name="Amina", organisation="Port Authority", country="KZ"
    )


def prefs(reader: Subscriber) -> str:
    return f"/newsletter/preferences/{reader_tokens.make_token(reader, 'preferences')}/"


def test_it_shows_the_readers_details_and_sections(client, reader):
    finance = CategoryFactory(name="Finance")
    reader.categories.set([finance])
    response = client.get(prefs(reader))
    page = response.content.decode()
    assert response.status_code == 200
    assert "amina@example.com" in page and 'value="Amina"' in page
    assert f'value="{finance.pk}" id="id_categories_0" checked' in page
    assert '<option value="KZ" selected>' in page


def test_it_saves_details_and_sections_and_records_the_change(client, reader):
    finance, energy = CategoryFactory(name="Finance"), CategoryFactory(name="Energy")
    response = client.post(
        prefs(reader),
        {
            "action": "profile",
            "name": "Amina K.",
            "organisation": "",
            "country": "UZ",
            "categories": [finance.pk, energy.pk],
        },
    )
    assert response.status_code == 200
    assert b"Saved." in response.content
    reader.refresh_from_db()
    assert (reader.name, reader.organisation, reader.country) == ("Amina K.", "", "UZ")
    assert set(reader.categories.all()) == {finance, energy}
    record = reader.consent_records.get()
    assert (record.action, record.note) == (
        "change",
        "changed: name, organisation, country, sections",
    )


@pytest.mark.parametrize(
    "bad",
    [{"categories": ["999999"]}, {"name": "A\r\nB"}, {"country": "ZZ"}, {"name": "x" * 101}],
)
def test_bad_details_are_refused_and_change_nothing(client, reader, bad):
    response = client.post(prefs(reader), {"action": "profile", "name": "Other", **bad})
    assert response.status_code == 400
    assert b'role="alert"' in response.content
    reader.refresh_from_db()
    assert reader.name == "Amina"
    assert not reader.consent_records.exists()


@pytest.mark.parametrize("weeks", [4, 8])
def test_a_pause_holds_the_digest_until_it_ends(client, reader, weeks):
    response = client.post(prefs(reader), {"action": "pause", "weeks": str(weeks)})
    assert response.status_code == 200
    reader.refresh_from_db()
    assert reader.paused_until.date() == (timezone.now() + timedelta(weeks=weeks)).date()
    issue = IssueFactory()
    assert ledger(issue, now=timezone.now()) == 0
    later = IssueFactory()
    assert ledger(later, now=reader.paused_until + timedelta(hours=1)) == 1


def test_a_pause_of_another_length_is_refused(client, reader):
    assert client.post(prefs(reader), {"action": "pause", "weeks": "52"}).status_code == 400
    reader.refresh_from_db()
    assert reader.paused_until is None


def test_resume_ends_a_pause(client, reader):
    client.post(prefs(reader), {"action": "pause", "weeks": "4"})
    response = client.post(prefs(reader), {"action": "resume"})
    assert b"Welcome back" in response.content
    reader.refresh_from_db()
    assert reader.paused_until is None


def test_unsubscribe_from_the_preferences_page(client, reader):
    response = client.post(prefs(reader), {"action": "unsubscribe"})
    assert b"You are unsubscribed" in response.content
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED
    assert reader.consent_records.get().method == "preferences"


def test_download_my_data_gives_profile_consent_history_and_deliveries(client):
    client.post(SUBSCRIBE, signup_data(), REMOTE_ADDR="203.0.113.5")
    client.post(link(mail.outbox[0], "/newsletter/confirm/"))
    reader = Subscriber.objects.get()
    Delivery.objects.create(
        issue=IssueFactory(number=12), subscriber=reader, status="sent", sent_at=timezone.now()
    )
    response = client.post(prefs(reader), {"action": "export"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == (
        'attachment; filename="belt-road-weekly-my-data.json"'
    )
    data = json.loads(response.content)
    assert data["profile"]["email"] == "li.wei@example.com"
    assert data["profile"]["sections"] == ["all"]
    assert [r["action"] for r in data["consent_history"]] == ["signup", "confirm"]
    assert data["consent_history"][0]["ip"] == "203.0.113.5"
    assert data["consent_history"][0]["consent_text_version"] == 1
    assert data["deliveries"][0]["issue"] == 12


def test_the_download_needs_a_post(client, reader):
    response = client.get(prefs(reader) + "?action=export")
    assert response["Content-Type"].startswith("text/html")


# --- Erasure ---------------------------------------------------------------------------------


@pytest.fixture
def history(reader):
    ConsentRecord.objects.create(
        subscriber=reader, action="signup", ip="203.0.113.1", user_agent="Chrome"
    )
    delivery = Delivery.objects.create(
        issue=IssueFactory(), subscriber=reader, status="bounced", last_error="550 amina@..."
    )
    TrackingEvent.objects.create(
        esp="mailgun",
        event_type="bounced",
        delivery=delivery,
        payload={"recipient": "amina@example.com"},
        mta_response="550 amina@example.com unknown",
    )
    return delivery


def test_erase_needs_the_box_ticked(client, reader):
    response = client.post(prefs(reader), {"action": "erase"})
    assert response.status_code == 400
    assert b"Tick the box" in response.content
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.ACTIVE


def test_erase_removes_personal_data_and_keeps_anonymous_deliveries(client, reader, history):
    preferences_url = prefs(reader)
    unsubscribe_url = f"/newsletter/unsubscribe/{reader_tokens.make_token(reader, 'unsubscribe')}/"
    response = client.post(preferences_url, {"action": "erase", "confirm": "on"})
    assert response.status_code == 200
    assert b"Your data is erased" in response.content

    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.ERASED
    assert "amina" not in reader.email
    assert (reader.name, reader.organisation, reader.country) == ("", "", "")
    assert not reader.consent_records.exclude(ip=None).exists()
    assert not reader.consent_records.exclude(user_agent="").exists()
    history.refresh_from_db()
    assert history.subscriber_id == reader.pk and history.last_error == ""
    event = TrackingEvent.objects.get()
    assert (event.payload, event.mta_response) == ({}, "")
    suppression = Suppression.objects.get()
    assert (suppression.reason, suppression.email_hash) == (
        "erased",
        email_hash("amina@example.com"),
    )
    # Every link in every email sent so far is dead.
    assert client.get(preferences_url).status_code == 404
    assert client.post(unsubscribe_url, {"List-Unsubscribe": "One-Click"}).status_code == 404


def test_an_erased_address_comes_back_through_neither_signup_nor_import(client, reader):
    client.post(prefs(reader), {"action": "erase", "confirm": "on"})
    client.post(SUBSCRIBE, signup_data(email="Amina@Example.com"))
    report = subscribers_import(
        newsletter=default_newsletter(), source="email\namina@example.com\n", prior_consent="x"
    )
    assert report.created == 0 and len(report.skipped) == 1
    assert not Subscriber.objects.filter(email__iexact="amina@example.com").exists()
    assert mail.outbox == []


# --- Changing the address ----------------------------------------------------------------------


def test_a_new_address_changes_nothing_until_it_is_confirmed(client, reader):
    response = client.post(prefs(reader), {"action": "email", "email": " New@Example.com "})
    assert b"We have sent a confirmation link to the new address" in response.content
    reader.refresh_from_db()
    assert reader.email == "amina@example.com"
    (message,) = mail.outbox
    assert message.to == ["new@example.com"]
    assert message.subject == "Confirm your new address for Belt & Road Weekly"
    mail.outbox.clear()

    confirm = link(message, "/newsletter/confirm/")
    assert b"Confirm your new address" in client.get(confirm).content
    response = client.post(confirm)
    assert b"Your address is changed" in response.content
    reader.refresh_from_db()
    assert reader.email == "new@example.com"
    (notice,) = mail.outbox
    assert notice.to == ["amina@example.com"]
    assert "now goes to new@example.com" in notice.body
    # The same link again does nothing more.
    mail.outbox.clear()
    assert b"already subscribed" in client.post(confirm).content
    assert mail.outbox == []


def test_asking_for_an_address_that_is_taken_looks_the_same_and_sends_nothing(client, reader):
    SubscriberFactory(email="taken@example.com")
    free = client.post(prefs(reader), {"action": "email", "email": "free@example.com"})
    taken = client.post(prefs(reader), {"action": "email", "email": "taken@example.com"})
    assert taken.status_code == free.status_code == 200
    assert without_csrf(taken.content) == without_csrf(free.content)
    assert sent_to("taken@example.com") == []


def test_an_address_taken_before_confirming_is_refused_at_the_confirm(client, reader):
    client.post(prefs(reader), {"action": "email", "email": "race@example.com"})
    SubscriberFactory(email="race@example.com")
    response = client.post(link(mail.outbox[0], "/newsletter/confirm/"))
    assert response.status_code == 409
    reader.refresh_from_db()
    assert reader.email == "amina@example.com"


def test_an_invalid_new_address_is_refused(client, reader):
    response = client.post(prefs(reader), {"action": "email", "email": "nope"})
    assert response.status_code == 400
    assert b"Enter a valid email address" in response.content
    assert mail.outbox == []


def test_an_expired_address_change_link_can_be_sent_again(client, reader):
    client.post(prefs(reader), {"action": "email", "email": "later@example.com"})
    confirm = link(mail.outbox[0], "/newsletter/confirm/")
    mail.outbox.clear()
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        assert client.post(confirm).status_code == 410
        client.post(confirm, {"resend": "1"})
    (message,) = mail.outbox
    assert message.to == ["later@example.com"]
    assert message.subject == "Confirm your new address for Belt & Road Weekly"
