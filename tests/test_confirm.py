"""Double opt-in: GET shows a button, POST confirms, a used or expired link offers a new one."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from newsletter.models import ConsentRecord, Issue, Subscriber
from newsletter.tokens import confirmation_tokens
from tests.factories import IssueFactory, SubscriberFactory
from tests.reader_steps import (
    SUBSCRIBE,
    client,  # noqa: F401 - the fixture: requests that commit
    html_of,
    link,
    sent_to,
    signup_data,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def confirm_path(client):
    """Sign li.wei@example.com up through the form; return the link in the email."""
    client.post(SUBSCRIBE, signup_data(), REMOTE_ADDR="198.51.100.7")
    (message,) = mail.outbox
    mail.outbox.clear()
    return link(message, "/newsletter/confirm/")


def test_the_confirmation_email_carries_nothing_the_visitor_typed(client):
    spam = "Cheap pills at http://spam.example"
    client.post(SUBSCRIBE, signup_data(name=spam, organisation=spam))
    (message,) = mail.outbox
    for part in (message.subject, message.body, html_of(message)):
        assert "pills" not in part and "spam.example" not in part
    assert "Belt &amp; Road Weekly" in html_of(message)
    assert message.body.strip() and html_of(message).startswith("<!DOCTYPE html>")


def test_get_only_shows_a_button_and_the_consent_text(client, confirm_path):
    response = client.get(confirm_path)
    assert response.status_code == 200
    assert b'<button type="submit" class="primary">Confirm</button>' in response.content
    assert b"By confirming you agree to this" in response.content
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING
    assert mail.outbox == []


def test_post_confirms_records_when_and_where_and_sends_a_welcome(client, confirm_path):
    IssueFactory(number=3, status=Issue.Status.SENT, sent_at=timezone.now())
    response = client.post(confirm_path, REMOTE_ADDR="192.0.2.44", HTTP_USER_AGENT="Safari")
    assert response.status_code == 200
    assert b"You are subscribed" in response.content
    reader = Subscriber.objects.get()
    assert reader.status == Subscriber.Status.ACTIVE and reader.confirmed_at is not None
    record = reader.consent_records.get(action=ConsentRecord.Action.CONFIRM)
    assert (record.ip, record.user_agent, record.consent_text.version) == (
        "192.0.2.44",
        "Safari",
        1,
    )
    (welcome,) = mail.outbox
    assert welcome.subject == "Welcome to Belt & Road Weekly"
    assert client.get(link(welcome, "/newsletter/preferences/")).status_code == 200
    assert link(welcome, "/newsletter/archive/3/") in html_of(welcome)
    assert welcome.extra_headers["List-Unsubscribe"].startswith(
        "<http://localhost:8000/newsletter/unsubscribe/"
    )


def test_a_used_link_changes_nothing_and_says_so(client, confirm_path):
    client.post(confirm_path)
    confirmed_at = Subscriber.objects.get().confirmed_at
    mail.outbox.clear()
    response = client.post(confirm_path)
    assert response.status_code == 200
    assert b"You are already subscribed" in response.content
    assert Subscriber.objects.get().confirmed_at == confirmed_at
    assert ConsentRecord.objects.filter(action="confirm").count() == 1
    assert mail.outbox == []


def test_an_expired_link_changes_nothing_and_offers_a_new_one(client, confirm_path):
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        response = client.post(confirm_path)
        assert response.status_code == 410
        assert b"This confirmation link has expired" in response.content
        assert b'name="resend"' in response.content
        assert Subscriber.objects.get().status == Subscriber.Status.PENDING

        response = client.post(confirm_path, {"resend": "1"})
        assert b"A new confirmation link is on its way" in response.content
        (message,) = mail.outbox
        fresh = link(message, "/newsletter/confirm/")
        assert fresh != confirm_path
        client.post(fresh)
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE


def test_a_resend_obeys_the_one_email_a_day_rule(client, confirm_path):
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        for _ in range(3):
            client.post(confirm_path, {"resend": "1"})
    assert len(sent_to("li.wei@example.com")) == 1


def test_the_link_lifetime_is_configurable(client, confirm_path, settings):
    settings.NEWSLETTER_CONFIRM_MAX_AGE_DAYS = 1
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        assert client.post(confirm_path).status_code == 410
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING


@pytest.mark.parametrize("mangle", [lambda t: t[:-3] + "abc", lambda t: "nonsense"])
def test_a_tampered_link_gets_the_generic_page(client, confirm_path, mangle):
    token = confirm_path.rstrip("/").rsplit("/", 1)[1]
    response = client.post(f"/newsletter/confirm/{mangle(token)}/")
    assert response.status_code == 404
    assert b"This link is not valid" in response.content
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING


def test_a_link_for_an_erased_reader_is_not_valid(client):
    reader = SubscriberFactory(status=Subscriber.Status.PENDING, confirmed_at=None)
    token = confirmation_tokens.make_token(reader)
    from privacy.services import subscriber_erase

    subscriber_erase(subscriber=reader, method="admin")
    assert client.post(f"/newsletter/confirm/{token}/").status_code == 404
