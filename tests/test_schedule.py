"""Scheduling, holding and cancelling issues, and the scheduler that sends them on time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection

from newsletter.models import Delivery, Issue, Newsletter
from newsletter.sending.fanout import FAN_OUT, issue_fan_out
from newsletter.services.issues import (
    IssueActionError,
    IssueNotSendable,
    issue_cancel,
    issue_compile,
    issue_hold,
    issue_schedule,
    issue_start_sending,
)
from newsletter.tasks import send_due_issues, start_sending
from newsletter.weeks import IsoWeek
from tests.factories import (
    ArticleFactory,
    IssueFactory,
    IssueItemFactory,
    StaffUserFactory,
    SubscriberFactory,
    default_newsletter,
)

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)  # Friday 09:00 in Shanghai


@pytest.fixture
def issue_no_5():
    """A draft of one story, No. 5 (the number the refusals below name)."""
    issue = IssueFactory(number=5)
    IssueItemFactory(issue=issue)
    return issue


@pytest.fixture
def readers():
    return SubscriberFactory.create_batch(3)


def tick(moment: datetime, run_on_commit) -> None:
    with time_machine.travel(moment, tick=False), run_on_commit():
        send_due_issues.delay()


def readers_mailed() -> list[str]:
    return sorted(m.to[0] for m in mail.outbox if "[TEST]" not in m.subject)


def test_a_scheduled_issue_goes_out_at_its_time_and_not_before(issue_no_5, readers, run_on_commit):
    issue_schedule(issue=issue_no_5, at=NOW + timedelta(hours=2), now=NOW)
    assert (issue_no_5.status, issue_no_5.scheduled_at) == ("scheduled", NOW + timedelta(hours=2))
    tick(NOW + timedelta(hours=1, minutes=59), run_on_commit)
    assert mail.outbox == [] and not Delivery.objects.exists()
    tick(NOW + timedelta(hours=2), run_on_commit)
    assert readers_mailed() == sorted(r.email for r in readers)
    issue_no_5.refresh_from_db()
    assert issue_no_5.status == Issue.Status.SENT


def test_scheduling_in_the_past_is_refused_and_changes_nothing(issue_no_5):
    with pytest.raises(
        IssueActionError, match=r"2026-11-27 08:59 \(Asia/Shanghai\) is in the past"
    ):
        issue_schedule(issue=issue_no_5, at=NOW - timedelta(minutes=1), now=NOW)
    issue_no_5.refresh_from_db()
    assert (issue_no_5.status, issue_no_5.scheduled_at) == ("draft", None)


@pytest.mark.parametrize("status", ["sending", "sent", "cancelled"])
def test_an_issue_that_went_or_was_cancelled_cannot_be_scheduled(issue_no_5, status):
    Issue.objects.filter(pk=issue_no_5.pk).update(status=status)
    with pytest.raises(IssueActionError, match="it cannot be scheduled"):
        issue_schedule(issue=issue_no_5, at=NOW + timedelta(hours=1), now=NOW)
    issue_no_5.refresh_from_db()
    assert issue_no_5.status == status and issue_no_5.scheduled_at is None


def test_an_empty_issue_cannot_be_scheduled_or_sent(readers):
    empty = IssueFactory(number=8)
    IssueItemFactory(issue=empty, removed=True)
    with pytest.raises(IssueNotSendable, match="No. 8 has no articles"):
        issue_schedule(issue=empty, at=NOW + timedelta(hours=1), now=NOW)
    with pytest.raises(IssueNotSendable, match="No. 8 has no articles"):
        issue_start_sending(issue=empty)
    assert mail.outbox == [] and not Delivery.objects.exists()


def test_a_scheduled_issue_can_be_moved(issue_no_5):
    issue_schedule(issue=issue_no_5, at=NOW + timedelta(hours=2), now=NOW)
    issue_schedule(issue=issue_no_5, at=NOW + timedelta(days=1), now=NOW)
    assert issue_no_5.scheduled_at == NOW + timedelta(days=1)


def test_a_held_issue_is_not_sent_at_its_time(issue_no_5, readers, run_on_commit):
    issue_schedule(issue=issue_no_5, at=NOW + timedelta(hours=2), now=NOW)
    issue_hold(issue=issue_no_5)
    assert (issue_no_5.status, issue_no_5.scheduled_at) == ("draft", None)
    tick(NOW + timedelta(hours=3), run_on_commit)
    assert mail.outbox == [] and not Delivery.objects.exists()


def test_holding_after_the_send_task_was_queued_still_holds(issue_no_5, readers, run_on_commit):
    issue_schedule(issue=issue_no_5, at=NOW + timedelta(hours=2), now=NOW)
    issue_hold(issue=issue_no_5)  # the scheduler had already queued start_sending for it
    with time_machine.travel(NOW + timedelta(hours=3), tick=False), run_on_commit():
        start_sending.delay(issue_no_5.pk)
    assert mail.outbox == []
    issue_no_5.refresh_from_db()
    assert issue_no_5.status == Issue.Status.DRAFT


def test_only_a_scheduled_issue_can_be_held(issue_no_5):
    with pytest.raises(
        IssueActionError, match="No. 5 is a draft, not scheduled; it cannot be held"
    ):
        issue_hold(issue=issue_no_5)


def test_cancelling_stops_the_issue_for_good_and_frees_its_articles(readers, run_on_commit):
    article = ArticleFactory(published_at=datetime(2026, 11, 25, tzinfo=UTC))
    week = IsoWeek.parse("2026-W48")
    issue = issue_compile(newsletter=default_newsletter(), week=week, now=NOW).issue
    issue_schedule(issue=issue, at=NOW + timedelta(hours=2), now=NOW)
    issue_cancel(issue=issue)
    assert issue.status == Issue.Status.CANCELLED and issue.scheduled_at is None
    tick(NOW + timedelta(hours=3), run_on_commit)
    with pytest.raises(IssueNotSendable, match="No. 1 was cancelled; it cannot be sent."):
        issue_start_sending(issue=issue)
    assert mail.outbox == []
    again = issue_compile(newsletter=default_newsletter(), week=week, now=NOW).issue
    assert again.number == 2 and list(again.items.values_list("article", flat=True)) == [article.pk]


def test_a_sent_issue_cannot_be_cancelled(issue_no_5):
    Issue.objects.filter(pk=issue_no_5.pk).update(status=Issue.Status.SENT)
    with pytest.raises(IssueActionError, match="No. 5 is sent; it cannot be cancelled."):
        issue_cancel(issue=issue_no_5)


def test_a_scheduled_issue_emptied_by_an_editor_goes_back_to_draft_and_the_editors_hear(
    issue_no_5, readers, run_on_commit
):
    StaffUserFactory(username="amina", groups=["Editors"])
    issue_schedule(issue=issue_no_5, at=NOW + timedelta(hours=2), now=NOW)
    issue_no_5.items.update(removed=True)
    tick(NOW + timedelta(hours=2), run_on_commit)
    issue_no_5.refresh_from_db()
    assert issue_no_5.status == Issue.Status.DRAFT and not Delivery.objects.exists()
    assert [m.to for m in mail.outbox] == [["amina@newsroom.example.org"]]
    assert mail.outbox[0].subject == "Not sent: Belt & Road Weekly No. 5 is back in draft"
    assert "has no articles" in mail.outbox[0].body
    tick(NOW + timedelta(hours=2, minutes=1), run_on_commit)
    assert len(mail.outbox) == 1  # told once, not at every tick


def test_send_unless_held_sends_the_compiled_issue_after_the_review_time(readers, run_on_commit):
    from newsletter.tasks import compile_due_issues

    Newsletter.objects.update(approval_policy=Newsletter.Approval.AUTO, review_hours=2)
    ArticleFactory(published_at=NOW - timedelta(days=2))
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        compile_due_issues.delay()
    issue = Issue.objects.get()
    assert issue.status == Issue.Status.SCHEDULED
    tick(NOW + timedelta(hours=1), run_on_commit)
    assert readers_mailed() == []
    tick(NOW + timedelta(hours=2, minutes=1), run_on_commit)
    assert readers_mailed() == sorted(r.email for r in readers)


def test_two_sends_at_once_start_one(issue_no_5, readers, run_on_commit):
    stale = Issue.objects.get(pk=issue_no_5.pk)  # what the second editor's page loaded
    with run_on_commit():
        assert issue_start_sending(issue=issue_no_5) == 3
    with pytest.raises(IssueNotSendable, match="No. 5 is (sending|sent); it cannot be sent again"):
        issue_start_sending(issue=stale)
    assert readers_mailed() == sorted(r.email for r in readers)
    assert Delivery.objects.count() == 3


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_two_sends_racing_on_postgresql_start_one():
    """Two threads press "send" at the same instant: the conditional UPDATE lets one through."""
    issue = IssueFactory(number=6)
    IssueItemFactory(issue=issue)
    SubscriberFactory.create_batch(2)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def press() -> None:
        try:
            barrier.wait()
            issue_start_sending(issue=Issue.objects.get(pk=issue.pk))
            outcomes.append("started")
        except IssueNotSendable as exc:
            outcomes.append(str(exc))
        finally:
            connection.close()

    from unittest import mock

    enqueued: list[tuple] = []  # no worker here: the tasks are noted, not sent
    with mock.patch(
        "newsletter.sending.fanout.enqueue", lambda task, *args: enqueued.append((task, *args))
    ):
        threads = [threading.Thread(target=press) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert enqueued == [(FAN_OUT, issue.pk)]  # one fan-out started
        issue_fan_out(issue_id=issue.pk)  # what a worker does with it
    assert sorted(outcomes) == ["No. 6 is sending; it cannot be sent again.", "started"]
    assert Delivery.objects.filter(issue=issue).count() == 2
