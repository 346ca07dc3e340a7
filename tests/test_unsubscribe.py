"""The unsubscribe link: GET shows a button, POST (RFC 8058 one-click) acts."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from newsletter.models import ConsentRecord, Subscriber
from newsletter.tokens import reader_tokens
from tests.factories import SubscriberFactory

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
