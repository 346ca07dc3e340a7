"""Nothing changes a reader before its owner agrees: a signup's details wait for the button.

A stranger can type anyone's address into the form. For an address already on the
list, whatever its status, the typed details change nothing stored; the email to the
address carries them (by a signed link) and they apply only when its owner presses
the button on the page that link opens.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from newsletter.models import ConsentRecord, PendingSignup, Subscriber
from newsletter.services.subscribers import subscribers_purge_unconfirmed
from privacy.services import subscriber_erase
from tests.factories import CategoryFactory, SubscriberFactory
from tests.reader_steps import (
    SUBSCRIBE,
    client,  # noqa: F401 - the fixture: requests that commit
    html_of,
    link,
    sent_to,
    signup_data,
)

pytestmark = pytest.mark.django_db

KNOWN = ["pending", "active", "unsubscribed", "bounced", "complained"]


@pytest.fixture
def reader():
    trade, finance = CategoryFactory(name="Economy & Trade"), CategoryFactory(name="Finance")
    owner = SubscriberFactory(
        email="owner@example.com", name="Zhou Min", organisation="Xinhua", country="CN"
    )
    owner.categories.set([trade])
    owner.finance = finance
    return owner


def _as_before(reader: Subscriber, status: str) -> tuple:
    reader.refresh_from_db()
    return (
        reader.name,
        reader.organisation,
        reader.country,
        reader.status,
        [c.name for c in reader.categories.all()],
    ) == ("Zhou Min", "Xinhua", "CN", status, ["Economy & Trade"])


def _stranger_signs_up(client, reader) -> None:
    response = client.post(
        SUBSCRIBE,
        signup_data(
            email="OWNER@example.com",
            name="Mallory Stranger",
            organisation="Spam Corp",
            country="US",
            categories=[str(reader.finance.pk)],
        ),
    )
    assert b"Check your inbox" in response.content


@pytest.mark.parametrize("status", KNOWN)
def test_a_signup_for_a_known_address_changes_nothing_until_its_owner_confirms(
    client, reader, status
):
    Subscriber.objects.filter(pk=reader.pk).update(status=status)
    records = ConsentRecord.objects.count()
    _stranger_signs_up(client, reader)

    assert _as_before(reader, status)
    assert ConsentRecord.objects.count() == records  # no consent recorded for the stranger
    (message,) = sent_to("owner@example.com")
    assert "Mallory" not in message.body and "Mallory" not in html_of(message)
    if status == "active":
        assert message.subject == "You already subscribe to Belt & Road Weekly"
        url = link(message, "/newsletter/confirm/")
    else:
        assert message.subject == "Confirm your subscription to Belt & Road Weekly"
        url = link(message, "/newsletter/confirm/")

    # Opening the link (a scanner does) shows the details and changes nothing either.
    page = client.get(url).content.decode()
    assert "Mallory Stranger" in page and "Spam Corp" in page
    assert _as_before(reader, status)

    # The owner presses the button: now the details apply.
    done = client.post(url).content.decode()
    reader.refresh_from_db()
    assert (reader.name, reader.organisation, reader.country) == (
        "Mallory Stranger",
        "Spam Corp",
        "US",
    )
    assert [c.name for c in reader.categories.all()] == ["Finance"]
    assert reader.status == "active"
    assert not PendingSignup.objects.exists()
    if status == "active":
        assert "Your details are updated" in done
        assert reader.consent_records.filter(action="change", method="link").exists()
    else:
        assert "You are subscribed" in done
        signup = reader.consent_records.get(action="signup")
        assert (signup.form, signup.consent_text_id is not None) == ("subscribe-page", True)
        assert reader.consent_records.filter(action="confirm").exists()


def test_an_active_readers_link_applies_the_details_once(client, reader):
    _stranger_signs_up(client, reader)
    url = link(sent_to("owner@example.com")[0], "/newsletter/confirm/")
    client.post(url)
    reader.refresh_from_db()
    reader.name = "Zhou Min"
    reader.save()
    again = client.post(url).content.decode()
    assert "You are already subscribed" in again
    reader.refresh_from_db()
    assert reader.name == "Zhou Min"


def test_an_active_reader_whose_details_are_the_same_gets_no_apply_link(client, reader):
    client.post(
        SUBSCRIBE,
        signup_data(
            email="owner@example.com",
            name="Zhou Min",
            organisation="Xinhua",
            country="CN",
            categories=[str(reader.categories.get().pk)],
        ),
    )
    (message,) = mail.outbox
    assert "/newsletter/confirm/" not in message.body


def test_held_details_go_with_erasure_and_with_age(client, reader):
    _stranger_signs_up(client, reader)
    assert PendingSignup.objects.count() == 1
    subscriber_erase(subscriber=reader, method="admin")
    assert not PendingSignup.objects.exists()

    other = SubscriberFactory(email="other@example.com")
    client.post(SUBSCRIBE, signup_data(email="other@example.com", name="X"))
    PendingSignup.objects.update(created_at=timezone.now() - timedelta(days=8))
    subscribers_purge_unconfirmed(older_than=timezone.now() - timedelta(days=30))
    assert not PendingSignup.objects.exists()
    assert Subscriber.objects.filter(pk=other.pk).exists()


@pytest.mark.parametrize("status", KNOWN)
def test_the_request_does_the_same_queries_and_enqueues_one_task_whatever_the_state(
    reader, status, django_capture_on_commit_callbacks
):
    """The same work on the request path for every state (bench/signup_timing.py times it)."""
    Subscriber.objects.filter(pk=reader.pk).update(status=status)
    Client().get(SUBSCRIBE)  # a warm cache (the newsroom's zone), as in production
    shapes = []
    for email in ("owner@example.com", "new@example.com"):
        with (
            django_capture_on_commit_callbacks() as enqueued,
            CaptureQueriesContext(connection) as queries,
        ):
            Client().post(SUBSCRIBE, signup_data(email=email))
        shapes.append(([q["sql"] for q in queries.captured_queries], len(enqueued)))
    assert shapes[0] == shapes[1]
    assert shapes[0][1] == 1
    assert not mail.outbox  # nothing ran yet: the task does the work
