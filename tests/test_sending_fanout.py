"""The fan-out writes the ledger in chunks, each enqueuing its batches as it commits.

So the first batches are sent while later chunks are still written, the issue is never
marked sent before the last chunk, and a fan-out that died is started again by beat's
watchdog and goes on from its cursor. In process; the same tests run on SQLite and on
PostgreSQL/Redis (the two-at-once test needs PostgreSQL). Real workers send through the
fan-out task in tests/e2e/test_sending_workers.py and tests/e2e/test_send_recovery.py.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from newsletter.models import BatchDispatch, Delivery, Issue
from newsletter.sending.fanout import CHUNK_BATCHES, fan_out_chunk, issue_fan_out
from newsletter.services.issues import issue_start_sending
from newsletter.tasks import reclaim_expired_leases
from tests.factories import SubscriberFactory

pytestmark = pytest.mark.django_db

BATCH = 2
CHUNK = BATCH * CHUNK_BATCHES  # readers per chunk


@pytest.fixture
def small_batches(settings):
    settings.NEWSLETTER_BATCH_SIZE = BATCH


def claimed(issue: Issue, django_capture_on_commit_callbacks) -> list:
    """Press "Send now" and return the fan-out task it enqueued, not yet run."""
    with django_capture_on_commit_callbacks() as fan_out:
        issue_start_sending(issue=issue)
    assert Delivery.objects.filter(issue=issue).count() == 0  # nothing written yet
    return fan_out


def test_send_now_answers_with_the_readers_before_the_ledger_is_written(
    issue, small_batches, django_capture_on_commit_callbacks
):
    SubscriberFactory.create_batch(3)
    SubscriberFactory(status="unsubscribed")
    with django_capture_on_commit_callbacks() as fan_out:
        assert issue_start_sending(issue=issue) == 3
    issue.refresh_from_db()
    assert (issue.status, issue.recipients_count, issue.fanout_done_at) == ("sending", 0, None)
    assert len(fan_out) == 1


def test_each_chunk_commits_with_its_own_batches_and_the_issue_waits_for_the_last(
    issue, small_batches, django_capture_on_commit_callbacks
):
    readers = SubscriberFactory.create_batch(CHUNK + 5)
    claimed(issue, django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True) as first_batches:
        assert fan_out_chunk(issue_id=issue.pk) == (CHUNK, True)
    issue.refresh_from_db()
    assert len(first_batches) == CHUNK_BATCHES  # one task per range of the first chunk
    assert issue.fanout_cursor == readers[CHUNK - 1].pk
    assert (issue.recipients_count, issue.sent_count) == (CHUNK, CHUNK)
    # Every batch of the first chunk has ended, but the ledger is not complete.
    assert issue.status == "sending" and issue.fanout_done_at is None

    with django_capture_on_commit_callbacks(execute=True):
        assert issue_fan_out(issue_id=issue.pk) == 5
    issue.refresh_from_db()
    assert (issue.status, issue.recipients_count, issue.sent_count) == (
        "sent",
        CHUNK + 5,
        CHUNK + 5,
    )
    assert issue.fanout_done_at is not None
    assert Counter(m.to[0] for m in mail.outbox) == Counter(r.email for r in readers)


def test_an_issue_with_no_reader_ends_through_one_empty_range(issue, small_batches, run_on_commit):
    with run_on_commit():
        assert issue_start_sending(issue=issue) == 0
    issue.refresh_from_db()
    assert (issue.status, issue.recipients_count) == ("sent", 0)
    assert list(BatchDispatch.objects.values_list("first_id", "last_id")) == [(0, 0)]


def test_a_fan_out_that_died_is_started_again_by_the_watchdog_from_its_cursor(
    issue, small_batches, settings, django_capture_on_commit_callbacks, time_machine
):
    readers = SubscriberFactory.create_batch(CHUNK * 2 + 3)
    claimed(issue, django_capture_on_commit_callbacks)  # its task is lost with the broker
    with django_capture_on_commit_callbacks(execute=True):
        fan_out_chunk(issue_id=issue.pk)  # then one chunk, and the worker dies
    grace = settings.NEWSLETTER_DISPATCH_GRACE_SECONDS

    time_machine.move_to(timezone.now() + timedelta(seconds=grace - 5))
    with django_capture_on_commit_callbacks(execute=True) as started:
        reclaim_expired_leases()
    assert started == []  # still within its grace: it may only be slow
    assert Issue.objects.get(pk=issue.pk).status == "sending"

    time_machine.move_to(timezone.now() + timedelta(seconds=10))
    with django_capture_on_commit_callbacks(execute=True):
        reclaim_expired_leases()
    issue.refresh_from_db()
    assert (issue.status, issue.recipients_count) == ("sent", len(readers))
    by_reader = Counter(Delivery.objects.values_list("subscriber_id", flat=True))
    assert by_reader == Counter(r.pk for r in readers)  # one row each, none twice
    assert Counter(m.to[0] for m in mail.outbox) == Counter(r.email for r in readers)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs two PostgreSQL sessions")
@pytest.mark.django_db(transaction=True)
def test_two_fan_outs_at_once_write_and_count_each_reader_once(issue, small_batches):
    readers = SubscriberFactory.create_batch(CHUNK * 4 + 1)
    Issue.objects.filter(pk=issue.pk).update(
        status="sending", send_started_at=timezone.now(), fanout_moved_at=timezone.now()
    )
    written: list[int] = []

    def run() -> None:
        try:
            written.append(issue_fan_out(issue_id=issue.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    issue.refresh_from_db()
    assert sum(written) == len(readers) == issue.recipients_count == issue.sent_count
    assert issue.status == "sent"
    assert Counter(m.to[0] for m in mail.outbox) == Counter(r.email for r in readers)
