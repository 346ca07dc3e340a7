"""The sending engine with real worker processes over Redis and PostgreSQL.

The far side is the local stand-ins: anymail's real Mailgun backend posts over HTTP
to standins.esp, the SMTP backend talks to the aiosmtpd sink.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from newsletter.models import Delivery, Issue
from newsletter.services.issues import issue_start_sending
from newsletter.services.withdrawals import subscriber_unsubscribe
from newsletter.tasks import reclaim_expired_leases
from standins.esp import EspStandin
from standins.smtp import SmtpSink
from tests.e2e.conftest import wait_for
from tests.sending_steps import an_issue, esp_env, readers, sent

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def esp():
    with EspStandin(keep=50) as standin:
        yield standin


def test_2000_readers_each_get_exactly_one_email_through_the_esp_batch_path(start_worker, esp):
    env = esp_env(esp, NEWSLETTER_RETRY_BASE_SECONDS="1")
    start_worker(**env)
    start_worker(**env)
    issue = an_issue()
    sections = [item.section for item in issue.items.select_related("section")]
    everyone = readers(2000, categories=sections)
    issue_start_sending(issue=issue)
    wait_for(lambda: sent(issue), timeout=120)

    assert esp.total == 2000
    assert set(esp.received_count.values()) == {1}
    assert sorted(esp.received_count) == sorted(r.email for r in everyone)
    assert Delivery.objects.filter(issue=issue, status="sent").count() == 2000
    assert Issue.objects.get(pk=issue.pk).sent_count == 2000
    # One call per variant and batch (four variants: each section alone, and all),
    # never one per reader.
    assert len(esp.calls) <= 4 * Delivery.objects.filter(issue=issue).count() // 500 + 4
    copy = esp.messages[0]
    assert copy.headers["List-Unsubscribe"].startswith("<http") and copy.variables["delivery"]


def test_2000_readers_each_get_exactly_one_email_through_smtp(start_worker):
    with SmtpSink(keep=10) as sink:
        env = {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(sink.port),
        }
        start_worker(**env)
        start_worker(**env)
        issue = an_issue()
        everyone = readers(2000)
        issue_start_sending(issue=issue)
        wait_for(lambda: sent(issue), timeout=180)
        assert sink.total == 2000 and set(sink.received_count.values()) == {1}
        assert sorted(sink.received_count) == sorted(r.email for r in everyone)


def test_a_worker_killed_mid_send_loses_no_reader_and_duplicates_at_most_one_call(
    start_worker, esp, capsys, settings
):
    settings.NEWSLETTER_BATCH_SIZE = 100  # the watchdog, in this process
    esp.delay = 0.15  # slow enough to kill the worker in the middle of the send
    env = esp_env(
        esp,
        NEWSLETTER_BATCH_SIZE="100",  # the fan-out, in the worker, cuts the ranges
        NEWSLETTER_RETRY_BASE_SECONDS="1",
        NEWSLETTER_ESP_BATCH_LIMIT="25",
        NEWSLETTER_LEASE_SECONDS="30",
        CELERY_VISIBILITY_TIMEOUT="60",
    )
    doomed = start_worker(**env)
    issue = an_issue()
    everyone = readers(1000)
    issue_start_sending(issue=issue)
    wait_for(lambda: esp.total >= 200, timeout=60)
    doomed.kill()  # kill -9: no chance to settle its rows
    killed_at = esp.total
    assert killed_at < 1000, "the worker finished before it could be killed"
    in_flight = Delivery.objects.filter(issue=issue, status="sending").count()

    start_worker(**env)
    # Time passes: the dead worker's leases run out (instead of waiting 30 s for real).
    Delivery.objects.filter(issue=issue, status="sending").update(
        lease_until=timezone.now() - timezone.timedelta(seconds=1)
    )
    reclaim_expired_leases()
    wait_for(lambda: sent(issue), timeout=120)

    duplicates = sum(n - 1 for n in esp.received_count.values() if n > 1)
    with capsys.disabled():
        print(
            f"\n  kill -9 after {killed_at} accepted, {in_flight} rows in flight: {duplicates} duplicate(s)"
        )
    assert sorted(esp.received_count) == sorted(r.email for r in everyone)  # no reader lost
    assert duplicates <= 25  # at most the one ESP call in flight
    assert Delivery.objects.filter(issue=issue, status="sent").count() == 1000


def test_a_worker_killed_mid_send_over_smtp_duplicates_at_most_the_one_message_in_flight(
    start_worker, settings, capsys
):
    settings.NEWSLETTER_BATCH_SIZE = 100
    with SmtpSink(keep=0) as sink:
        sink.delay = 0.003  # slow enough to kill the worker in the middle of the send
        env = {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(sink.port),
            "NEWSLETTER_BATCH_SIZE": "100",
            "NEWSLETTER_LEASE_SECONDS": "30",
            "CELERY_VISIBILITY_TIMEOUT": "60",
        }
        doomed = start_worker(**env)
        issue = an_issue()
        everyone = readers(1000)
        issue_start_sending(issue=issue)
        wait_for(lambda: sink.total >= 150, timeout=60)
        doomed.kill()
        killed_at = sink.total
        assert killed_at < 1000, "the worker finished before it could be killed"

        start_worker(**env)
        Delivery.objects.filter(issue=issue, status="sending").update(
            lease_until=timezone.now() - timezone.timedelta(seconds=1)
        )
        reclaim_expired_leases()
        wait_for(lambda: sent(issue), timeout=120)

        duplicates = sum(n - 1 for n in sink.received_count.values() if n > 1)
        with capsys.disabled():
            print(f"\n  SMTP kill -9 after {killed_at} accepted: {duplicates} duplicate(s)")
        assert sorted(sink.received_count) == sorted(r.email for r in everyone)
        assert duplicates <= 1  # at most the one message in flight


def test_a_reader_who_unsubscribes_mid_send_gets_nothing(start_worker, esp):
    esp.delay = 0.2
    # Ranges of 50, so that the last reader's batch runs after the first call.
    start_worker(**esp_env(esp, NEWSLETTER_BATCH_SIZE="50", NEWSLETTER_RETRY_BASE_SECONDS="1"))
    issue = an_issue()
    everyone = readers(500)
    leaving = everyone[-1]
    issue_start_sending(issue=issue)
    wait_for(lambda: esp.total > 0, timeout=60)
    subscriber_unsubscribe(subscriber=leaving, method="one-click")
    wait_for(lambda: sent(issue), timeout=120)

    assert esp.received_count[leaving.email] == 0
    assert esp.total == 499
    row = Delivery.objects.get(issue=issue, subscriber=leaving)
    assert (row.status, row.last_error) == ("skipped", "reader is unsubscribed at send time")


def test_an_esp_answering_500_for_a_while_is_retried_until_every_reader_is_served(
    start_worker, esp
):
    esp.fail_next(4, status=500)
    start_worker(**esp_env(esp, NEWSLETTER_BATCH_SIZE="100", NEWSLETTER_RETRY_BASE_SECONDS="1"))
    issue = an_issue()
    everyone = readers(300)
    issue_start_sending(issue=issue)
    wait_for(lambda: sent(issue), timeout=120)

    assert [c.status for c in esp.calls[:4]] == [500] * 4
    assert sorted(esp.received_count) == sorted(r.email for r in everyone)
    assert set(esp.received_count.values()) == {1}
    assert Delivery.objects.filter(issue=issue, attempts__gt=1).exists()
    assert not Delivery.objects.filter(issue=issue).exclude(status="sent").exists()


def test_a_4xx_for_one_address_fails_that_row_and_the_rest_are_sent(start_worker, esp):
    start_worker(**esp_env(esp, NEWSLETTER_RETRY_BASE_SECONDS="1"))
    issue = an_issue()
    everyone = readers(300)
    bad = everyone[123]
    esp.refuse(bad.email)
    issue_start_sending(issue=issue)
    wait_for(lambda: sent(issue), timeout=120)

    row = Delivery.objects.get(issue=issue, subscriber=bad)
    assert row.status == "failed" and "400" in row.last_error
    assert esp.received_count[bad.email] == 0 and esp.total == 299
    issue.refresh_from_db()
    assert (issue.sent_count, issue.failed_count) == (299, 1)
    connection.close()
