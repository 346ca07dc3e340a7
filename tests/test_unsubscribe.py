"""The unsubscribe link: GET shows a button, POST (RFC 8058 one-click) acts."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils.http import int_to_base36

from newsletter.models import ConsentRecord, Newsletter, Subscriber
from newsletter.services.issues import issue_start_sending
from newsletter.services.subscribers import reader_email_send
from newsletter.tokens import reader_tokens
from tests.factories import IssueFactory, IssueItemFactory, SubscriberFactory
from tests.reader_steps import CommitClient

pytestmark = pytest.mark.django_db


def url_for(subscriber: Subscriber) -> str:
    return reverse(
        "newsletter:unsubscribe", args=[reader_tokens.make_token(subscriber, "unsubscribe")]
    )


def test_get_only_shows_a_button_and_changes_nothing(client):
    reader = SubscriberFactory()
    response = client.get(url_for(reader))
    assert response.status_code == 200
    assert b'<button type="submit">Unsubscribe</button>' in response.content
    assert b"Pause or choose fewer sections instead" in response.content
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.ACTIVE


def test_one_click_post_needs_no_cookie_or_csrf_token_and_answers_200():
    reader = SubscriberFactory()
    client = Client(enforce_csrf_checks=True)
    response = client.post(url_for(reader), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert b"You are unsubscribed" in response.content
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED
    assert reader.unsubscribed_at is not None
    record = ConsentRecord.objects.get(subscriber=reader)
    assert (record.action, record.method) == ("withdraw", "one-click")


def test_it_is_idempotent():
    reader = SubscriberFactory()
    client = Client(enforce_csrf_checks=True)
    for _ in range(2):
        assert client.post(url_for(reader), {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert ConsentRecord.objects.filter(subscriber=reader).count() == 1


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"),
        lambda t: "zz-" + t.split("-")[1],
        lambda t: "nonsense",
    ],
)
def test_a_tampered_token_gets_a_generic_page_and_changes_nothing(client, mangle):
    reader = SubscriberFactory()
    token = reader_tokens.make_token(reader, "unsubscribe")
    response = client.post(
        reverse("newsletter:unsubscribe", args=[mangle(token)]), {"List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 404
    assert b"This link is not valid" in response.content
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.ACTIVE


def test_a_preferences_token_cannot_unsubscribe(client):
    reader = SubscriberFactory()
    token = reader_tokens.make_token(reader, "preferences")
    assert client.post(reverse("newsletter:unsubscribe", args=[token])).status_code == 404


# --- Added with the reader pages -------------------------------------------------------------


def test_get_offers_a_pause_instead_which_works_from_the_page(client):
    reader = SubscriberFactory()
    client = CommitClient()
    page = client.get(url_for(reader)).content.decode()
    assert "Pause for 4 weeks" in page and "Pause for 8 weeks" in page
    preferences = reverse(
        "newsletter:preferences", args=[reader_tokens.make_token(reader, "preferences")]
    )
    assert f'action="{preferences}"' in page
    client.post(preferences, {"action": "pause", "weeks": "8"})
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.ACTIVE and reader.paused_until is not None


def test_a_token_of_one_newsletter_cannot_unsubscribe_from_another():
    other = Newsletter.objects.create(
        name="Silk Road Markets",
        slug="markets",
        from_name="Markets",
        from_email="markets@example.org",
        postal_address="Somewhere",
    )
    weekly = SubscriberFactory(email="same@example.com")
    markets = SubscriberFactory(email="same@example.com", newsletter=other)
    token = reader_tokens.make_token(markets, "unsubscribe")
    # The other reader's id with this signature: it binds newsletter and reader.
    forged = f"{int_to_base36(weekly.pk)}-{token.split('-')[1]}"
    client = Client(enforce_csrf_checks=True)
    assert (
        client.post(
            reverse("newsletter:unsubscribe", args=[forged]), {"List-Unsubscribe": "One-Click"}
        ).status_code
        == 404
    )
    client.post(reverse("newsletter:unsubscribe", args=[token]), {"List-Unsubscribe": "One-Click"})
    weekly.refresh_from_db()
    markets.refresh_from_db()
    assert (weekly.status, markets.status) == ("active", "unsubscribed")


def test_every_email_with_the_header_really_unsubscribes_when_it_is_used(run_on_commit):
    """The digest, the welcome and the already-subscribed emails all carry a working one-click."""
    digest_reader = SubscriberFactory(email="digest@example.com")
    welcome_reader = SubscriberFactory(email="welcome@example.com")
    again_reader = SubscriberFactory(email="again@example.com")
    issue = IssueFactory()
    IssueItemFactory(issue=issue)
    Subscriber.objects.exclude(pk__in=[digest_reader.pk]).update(status="pending")
    with run_on_commit():
        issue_start_sending(issue=issue)
    Subscriber.objects.filter(pk__in=[welcome_reader.pk, again_reader.pk]).update(status="active")
    reader_email_send(name="welcome", subscriber_id=welcome_reader.pk)
    reader_email_send(name="already_subscribed", subscriber_id=again_reader.pk)

    carrying = [m for m in mail.outbox if "List-Unsubscribe" in m.extra_headers]
    assert sorted(m.to[0] for m in carrying) == [
        "again@example.com",
        "digest@example.com",
        "welcome@example.com",
    ]
    client = Client(enforce_csrf_checks=True)
    for message in carrying:
        assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        url = message.extra_headers["List-Unsubscribe"].strip("<>")
        response = client.post(urlsplit(url).path, {"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
    for reader in (digest_reader, welcome_reader, again_reader):
        reader.refresh_from_db()
        assert reader.status == Subscriber.Status.UNSUBSCRIBED


def test_an_unsubscribed_reader_sees_there_is_nothing_more_to_do(client):
    reader = SubscriberFactory(status=Subscriber.Status.UNSUBSCRIBED)
    response = client.get(url_for(reader))
    assert b"You are not subscribed" in response.content
    assert b"<button" not in response.content
