"""Sunset: readers who stopped opening are asked once, then paused if they never answer."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core import mail

from newsletter.models import Delivery, Issue, Repermission, Subscriber
from newsletter.services.sunset import UNTIL_ANSWERED, sunset_run
from newsletter.tasks import sunset_readers
from tests.factories import DeliveryFactory, IssueFactory, SubscriberFactory, default_newsletter
from tests.sending_steps import ledger

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _sunset(settings):
    settings.NEWSLETTER_SUNSET_AFTER_ISSUES = 3
    settings.NEWSLETTER_SUNSET_GRACE_DAYS = 14


@pytest.fixture
def issues() -> list[Issue]:
    return [
        IssueFactory(status=Issue.Status.SENT, send_started_at=T0 + timedelta(weeks=n))
        for n in range(3)
    ]


def received(reader: Subscriber, issues: list[Issue], *, opened: set[int] = frozenset()) -> None:
    for n, issue in enumerate(issues):
        DeliveryFactory(
            issue=issue,
            subscriber=reader,
            sent_at=issue.send_started_at,
            opened_at=issue.send_started_at + timedelta(hours=1) if n in opened else None,
        )


def keep_path(message) -> str:
    return urlsplit(re.search(r"https?://\S+/newsletter/keep/[^/\s]+/", message.body).group(0)).path


@pytest.fixture
def asleep(issues) -> Subscriber:
    """A reader who got the last three issues and opened none; another reader opened one."""
    reader = SubscriberFactory(email="asleep@example.com")
    received(reader, issues)
    received(SubscriberFactory(email="reading@example.com"), issues, opened={2})
    return reader


def run(at: datetime):
    with time_machine.travel(at):
        return sunset_run(newsletter=default_newsletter())


def test_it_is_off_by_default(settings, asleep):
    settings.NEWSLETTER_SUNSET_AFTER_ISSUES = 0
    sunset_readers()
    assert mail.outbox == []


def test_a_reader_who_opened_none_of_the_last_issues_is_asked_once(asleep):
    later = T0 + timedelta(weeks=3)
    assert run(later).asked == 1
    assert run(later + timedelta(days=1)).asked == 0
    [message] = mail.outbox
    assert message.to == ["asleep@example.com"]
    assert message.subject == "Do you still want Belt & Road Weekly?"
    assert "in the last 3 issues" in message.body
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/newsletter/keep/" in message.alternatives[0][0]


def test_readers_with_fewer_issues_or_one_open_are_not_asked(issues):
    received(SubscriberFactory(), issues[1:])
    received(SubscriberFactory(), issues, opened={0})
    received(SubscriberFactory(), [], opened=set())
    assert run(T0 + timedelta(weeks=3)).asked == 0


def test_no_one_is_asked_when_the_esp_reports_no_opens_at_all(issues):
    for _ in range(3):
        received(SubscriberFactory(), issues)
    assert run(T0 + timedelta(weeks=3)).asked == 0
    assert mail.outbox == []


def test_no_answer_within_two_weeks_pauses_the_reader_out_of_the_next_issue(asleep):
    asked_at = T0 + timedelta(weeks=3)
    run(asked_at)
    assert run(asked_at + timedelta(days=13)).paused == 0
    assert run(asked_at + timedelta(days=14, hours=1)).paused == 1
    asleep.refresh_from_db()
    assert asleep.paused_until == UNTIL_ANSWERED
    assert Repermission.objects.get().outcome == "paused"
    next_issue = IssueFactory()
    ledger(next_issue, now=asked_at + timedelta(days=15))
    recipients = Delivery.objects.filter(issue=next_issue).values_list(
        "subscriber__email", flat=True
    )
    assert list(recipients) == ["reading@example.com"]


def test_the_button_keeps_the_reader_and_a_get_alone_changes_nothing(asleep, client):
    asked_at = T0 + timedelta(weeks=3)
    run(asked_at)
    path = keep_path(mail.outbox[0])
    response = client.get(path)  # a mail scanner opening the link
    assert b"Yes, keep sending it" in response.content
    assert Repermission.objects.get().outcome == "asked"
    response = client.post(path)
    assert b"you will keep receiving it" in response.content
    assert Repermission.objects.get().outcome == "kept"
    assert run(asked_at + timedelta(days=20)).paused == 0
    asleep.refresh_from_db()
    assert asleep.paused_until is None


def test_answering_after_the_pause_resumes_the_reader(asleep, client):
    asked_at = T0 + timedelta(weeks=3)
    run(asked_at)
    run(asked_at + timedelta(days=15))
    client.post(keep_path(mail.outbox[0]))
    asleep.refresh_from_db()
    assert (asleep.status, asleep.paused_until) == ("active", None)


def test_an_open_during_the_grace_period_counts_as_an_answer(asleep):
    asked_at = T0 + timedelta(weeks=3)
    run(asked_at)
    Delivery.objects.filter(subscriber=asleep).update(opened_at=asked_at + timedelta(days=2))
    result = run(asked_at + timedelta(days=15))
    assert (result.paused, result.kept) == (0, 1)
    asleep.refresh_from_db()
    assert asleep.paused_until is None


def test_a_reader_who_unsubscribed_meanwhile_is_neither_paused_nor_counted(asleep):
    asked_at = T0 + timedelta(weeks=3)
    run(asked_at)
    Subscriber.objects.filter(pk=asleep.pk).update(status=Subscriber.Status.UNSUBSCRIBED)
    assert run(asked_at + timedelta(days=15)).paused == 0
    assert not Repermission.objects.exists()


def test_a_bad_keep_link_shows_the_generic_bad_link_page(client):
    assert client.get("/newsletter/keep/not-a-token/").status_code == 404


def test_it_ignores_readers_already_paused_by_their_own_choice(issues):
    reader = SubscriberFactory(paused_until=T0 + timedelta(days=400))
    received(reader, issues)
    received(SubscriberFactory(), issues, opened={1})
    assert run(T0 + timedelta(weeks=3)).asked == 0
