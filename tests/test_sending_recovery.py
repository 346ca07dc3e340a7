"""Recovery: rate limits waited out, failed rows sent again, lost work noticed, duplicates shown.

In process, against anymail's real Mailgun backend and the ESP stand-in; the same
tests run on SQLite and on PostgreSQL/Redis. Real workers: tests/e2e/test_send_recovery.py.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
from anymail.exceptions import AnymailRequestsAPIError
from django.db import InterfaceError, OperationalError, connection
from django.urls import reverse
from django.utils import timezone

from newsletter.models import BatchDispatch, Delivery, InterruptedCall, Issue
from newsletter.selectors.metrics import issue_report
from newsletter.sending.batch import delivery_batch_send
from newsletter.sending.claim import LeaseHeartbeat, deliveries_claim, lease_renew
from newsletter.sending.errors import SendPaused, is_ambiguous, rate_limit_wait
from newsletter.sending.ratelimit import (
    LocalRateLimiter,
    paused_for,
    rate_limit_hit,
    send_rate_limiter,
    send_rate_reset,
    throttle,
)
from newsletter.sending.retry import Action, decide
from newsletter.services.issues import issue_start_sending
from newsletter.tasks import reclaim_expired_leases
from standins.esp import EspStandin
from tests.e2e.conftest import wait_for
from tests.factories import StaffUserFactory, SubscriberFactory
from tests.sending_steps import send_in_one_batch, snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def esp(settings):
    with EspStandin() as standin:
        settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
        settings.ANYMAIL = {"MAILGUN_API_KEY": standin.api_key, "MAILGUN_API_URL": standin.api_url}
        yield standin


def rows(issue: Issue) -> list[tuple[str, int]]:
    return sorted(Delivery.objects.filter(issue=issue).values_list("status", "attempts"))


def the_pause_ends() -> None:
    """Time passes until the ESP's Retry-After has run out (for every worker)."""
    send_rate_reset()


def api_error(status: int, retry_after: str | None = None) -> AnymailRequestsAPIError:
    response = requests.Response()
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return AnymailRequestsAPIError("ESP said no", response=response)


# --- 1. Rate limits are waited out, not counted as failures -------------------------------


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert rate_limit_wait(api_error(429, "120"), now=now) == 120
    later = format_datetime(now + timedelta(minutes=5), usegmt=True)
    assert rate_limit_wait(api_error(429, later), now=now) == 300
    assert rate_limit_wait(api_error(503, "30"), now=now) == 30
    assert rate_limit_wait(api_error(429), now=now) == 60  # none named: a minute
    assert rate_limit_wait(api_error(503), now=now) is None  # an outage, not a limit
    assert rate_limit_wait(api_error(500, "30"), now=now) is None


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("given_as", ["seconds", "http date"])
def test_the_esps_retry_after_is_waited_out_through_anymails_exception(
    esp, issue, status, given_as
):
    SubscriberFactory.create_batch(2)
    until = datetime.now(UTC) + timedelta(seconds=120)
    retry_after = "120" if given_as == "seconds" else format_datetime(until, usegmt=True)
    esp.rate_limit(600, retry_after=retry_after, status=status)
    result = send_in_one_batch(issue)

    assert (result.sent, result.requeued, result.rate_limited) == (0, 2, True)
    assert 115 <= result.retry_in <= 121  # the ESP's time, not the attempt's backoff
    assert rows(issue) == [("queued", 0)] * 2
    assert f"{status}" in Delivery.objects.first().last_error
    assert 100 < paused_for() <= 121


def test_a_429_puts_the_rows_back_without_using_an_attempt_and_pauses_every_worker(esp, issue):
    SubscriberFactory.create_batch(3)
    esp.rate_limit(120)
    result = send_in_one_batch(issue)

    assert (result.sent, result.requeued, result.rate_limited) == (0, 3, True)
    assert 119 <= result.retry_in <= 121
    assert rows(issue) == [("queued", 0)] * 3
    assert Delivery.objects.first().last_error.startswith("rate limited, waiting:")
    assert Issue.objects.get(pk=issue.pk).status == "sending"  # never "sent" while rows wait
    assert 100 < paused_for() <= 120
    # Another worker's range comes back early: it goes back to sleep, no call, no claim.
    calls = len(esp.calls)
    ids = list(Delivery.objects.values_list("id", flat=True))
    again = delivery_batch_send(issue_id=issue.pk, first_id=min(ids), last_id=max(ids))
    assert (again.claimed, again.rate_limited, len(esp.calls)) == (0, True, calls)
    assert 100 < again.retry_in <= 120


def test_the_progress_page_says_when_sending_waits_out_a_rate_limit(esp, issue, client):
    SubscriberFactory.create_batch(2)
    esp.rate_limit(120)
    send_in_one_batch(issue)
    client.force_login(StaffUserFactory(username="chen", groups=["Publishers"]))
    page = client.get(reverse("admin:newsletter_issue_progress", args=[issue.pk])).content.decode()
    assert "asked us to slow down: sending resumes in 2 min. No reader is failed for it." in page
    the_pause_ends()
    page = client.get(reverse("admin:newsletter_issue_progress", args=[issue.pk])).content.decode()
    assert "slow down" not in page


def test_a_rate_limit_of_any_length_leaves_no_reader_failed_and_each_sent_once(
    esp, issue, settings
):
    settings.NEWSLETTER_MAX_ATTEMPTS = 2
    readers = SubscriberFactory.create_batch(4)
    first, last = snapshot(issue)
    for _ in range(6):  # three times the attempts allowed for errors
        esp.rate_limit(3600)
        result = delivery_batch_send(issue_id=issue.pk, first_id=first, last_id=last)
        assert result.requeued == 4
        the_pause_ends()
    esp.rate_limit(0)
    result = delivery_batch_send(issue_id=issue.pk, first_id=first, last_id=last)

    assert result.sent == 4
    assert all(esp.received_count[r.email.lower()] == 1 for r in readers)
    assert rows(issue) == [("sent", 1)] * 4
    issue.refresh_from_db()
    assert (issue.status, issue.sent_count, issue.failed_count) == ("sent", 4, 0)


def test_a_long_retry_after_is_waited_out_in_hops_below_the_visibility_timeout(
    esp, issue, settings
):
    settings.CELERY_VISIBILITY_TIMEOUT = 600
    SubscriberFactory.create_batch(2)
    esp.rate_limit(7200)
    result = send_in_one_batch(issue)
    assert result.retry_in == 300 < settings.CELERY_VISIBILITY_TIMEOUT
    assert paused_for() > 7000  # the pause itself lasts the whole Retry-After


def test_past_the_give_up_budget_the_rows_fail_with_the_reason_and_the_send_ends(
    esp, issue, settings
):
    settings.NEWSLETTER_GIVE_UP_AFTER = 3600
    Issue.objects.filter(pk=issue.pk).update(send_started_at=timezone.now() - timedelta(hours=2))
    SubscriberFactory.create_batch(2)
    esp.rate_limit(60)
    result = send_in_one_batch(issue)

    assert (result.failed, result.retry_in) == (2, None)
    reason = Delivery.objects.first().last_error
    assert reason.startswith("gave up: rate limited past the 1 h budget (NEWSLETTER_GIVE_UP_AFTER)")
    assert "429" in reason
    issue.refresh_from_db()
    assert (issue.status, issue.failed_count) == ("sent", 2)


def test_a_range_waiting_out_a_pause_fails_its_rows_with_the_reason_once_the_budget_is_spent(
    esp, issue, settings
):
    settings.NEWSLETTER_GIVE_UP_AFTER = 3600
    Issue.objects.filter(pk=issue.pk).update(
        send_started_at=timezone.now() - timedelta(seconds=3500)
    )
    SubscriberFactory.create_batch(2)
    rate_limit_hit(600)  # another worker's 429: the pause outlasts what is left of the budget
    result = send_in_one_batch(issue)

    assert (result.failed, result.retry_in, esp.total) == (2, None, 0)
    reasons = set(Delivery.objects.values_list("last_error", flat=True))
    assert len(reasons) == 1 and reasons.pop().startswith(
        "gave up: rate limited past the 1 h budget (NEWSLETTER_GIVE_UP_AFTER)"
    )
    issue.refresh_from_db()
    assert (issue.status, issue.sent_count, issue.failed_count) == ("sent", 0, 2)


def test_a_retry_after_that_ends_past_the_budget_gives_up_at_once(settings):
    settings.NEWSLETTER_GIVE_UP_AFTER = 3600
    now = timezone.now()
    decision = decide(api_error(429, "7200"), attempts=1, started_at=now, now=now, jitter=0)
    assert decision.action is Action.GIVE_UP and "budget" in decision.reason


def test_server_errors_still_count_attempts(settings):
    settings.NEWSLETTER_MAX_ATTEMPTS = 3
    now = timezone.now()
    second = decide(api_error(500), attempts=2, started_at=now, now=now, jitter=0)
    third = decide(api_error(500), attempts=3, started_at=now, now=now, jitter=0)
    assert second.action is Action.RETRY and second.counts_attempt
    assert third.action is Action.GIVE_UP and third.reason.startswith("gave up after 3 attempts")


def test_a_429_halves_the_shared_rate_and_successes_climb_it_back():
    clock = [0.0]
    limiter = LocalRateLimiter(rate=100, clock=lambda: clock[0])
    assert limiter.reserve(100).start == 0  # 1 s of schedule at 100/s
    limiter.back_off(10)
    assert limiter.reserve(100, max_pause=1).paused  # everyone waits out the pause
    clock[0] = 10
    slot = limiter.reserve(100)
    assert slot.start == 10 and limiter.free == 12  # half the rate: 2 s for 100
    limiter.recover()
    limiter.recover()
    assert limiter.factor == 1
    assert limiter.reserve(100).start == 12 and limiter.free == 13


def test_a_batch_that_goes_through_climbs_the_halved_rate_back(esp, issue, settings):
    settings.NEWSLETTER_SEND_RATE = 1000

    def slot_length() -> float:
        """Seconds of the shared schedule that 100 messages take now."""
        limiter = send_rate_limiter()
        first = limiter.reserve(100)
        return round(limiter.reserve(0).start - first.start, 3)

    SubscriberFactory.create_batch(2)
    rate_limit_hit(0.01)  # another worker got a 429: the rate halves
    assert slot_length() == 0.2
    assert send_in_one_batch(issue).sent == 2
    assert slot_length() == round(0.1 / 0.75, 3)  # climbed back by half again


@pytest.mark.services
def test_a_429_halves_the_rate_of_every_worker_through_redis_and_successes_climb_it_back(
    settings,
):
    from newsletter.sending.ratelimit import RedisRateLimiter

    key = f"test:sendrate:{uuid.uuid4()}"
    worker_a = RedisRateLimiter(settings.REDIS_CACHE_URL, rate=100, key=key)
    worker_b = RedisRateLimiter(settings.REDIS_CACHE_URL, rate=100, key=key)
    try:

        def slot_length(limiter: RedisRateLimiter) -> float:
            """Seconds of the shared schedule that 100 messages take."""
            first = limiter.reserve(100)
            return round(limiter.reserve(0).start - first.start, 3)

        assert slot_length(worker_b) == 1.0  # 100 messages at 100/s
        assert worker_a.back_off(0.2) == 0.5  # worker A got the 429 ...
        assert worker_b.reserve(1, max_pause=0.1).paused  # ... worker B pauses too
        assert slot_length(worker_b) == 2.0  # ... and sends at half the rate
        assert worker_a.recover() == 0.75
        assert worker_b.recover() == 1.0  # each batch without a 429 climbs it back
        assert slot_length(worker_b) == 1.0
    finally:
        worker_a.client.delete(*worker_a.keys)


def test_a_worker_sleeps_through_a_short_pause_and_is_sent_back_by_a_long_one():
    naps: list[float] = []
    rate_limit_hit(2)
    assert 1 < throttle(10, sleep=naps.append) <= 2 and len(naps) == 1
    rate_limit_hit(600)
    with pytest.raises(SendPaused) as paused:
        throttle(10, sleep=naps.append)
    assert 590 < paused.value.seconds <= 600


# --- 2. Failed rows can be sent again --------------------------------------------------------


def test_retry_failed_sends_only_the_failed_rows_and_counts_them_again(
    esp, issue, client, run_on_commit
):
    readers = SubscriberFactory.create_batch(4)
    esp.refuse(readers[1].email)
    esp.refuse(readers[2].email)
    send_in_one_batch(issue)
    issue.refresh_from_db()
    assert (issue.status, issue.sent_count, issue.failed_count) == ("sent", 2, 2)
    esp.reset()  # the cause is fixed: the ESP takes the addresses now

    client.force_login(StaffUserFactory(username="chen", groups=["Publishers"]))
    page = client.get(reverse("admin:newsletter_issue_change", args=[issue.pk]))
    assert b'id="retry-failed"' in page.content
    confirm = client.get(reverse("admin:newsletter_issue_retry_failed", args=[issue.pk]))
    assert b"not a valid address" in confirm.content  # why they failed
    with run_on_commit():
        client.post(reverse("admin:newsletter_issue_retry_failed", args=[issue.pk]))

    assert sorted(esp.received_count) == sorted(r.email.lower() for r in readers[1:3])
    issue.refresh_from_db()
    assert (issue.status, issue.sent_count, issue.failed_count) == ("sent", 4, 0)
    assert issue.resent_at is not None


def test_only_publishers_may_retry_failed_rows(esp, issue, client):
    SubscriberFactory.create_batch(1)
    Delivery.objects.update(status="failed")
    Issue.objects.filter(pk=issue.pk).update(status="sent", failed_count=1)
    snapshot(issue)
    Delivery.objects.update(status="failed")
    client.force_login(StaffUserFactory(username="amina", groups=["Editors"]))
    page = client.get(reverse("admin:newsletter_issue_change", args=[issue.pk]))
    assert b'id="retry-failed"' not in page.content
    answer = client.post(reverse("admin:newsletter_issue_retry_failed", args=[issue.pk]))
    assert answer.status_code == 403
    assert Delivery.objects.get().status == "failed" and esp.total == 0


def test_retry_failed_with_nothing_failed_says_so_and_changes_nothing(esp, issue, client):
    SubscriberFactory.create_batch(2)
    send_in_one_batch(issue)
    client.force_login(StaffUserFactory(username="chen", groups=["Publishers"]))
    answer = client.post(
        reverse("admin:newsletter_issue_retry_failed", args=[issue.pk]), follow=True
    )
    assert "has no failed deliveries to retry" in answer.content.decode()
    assert Issue.objects.get(pk=issue.pk).status == "sent" and esp.total == 2


# --- 3. Every piece of work is noticed within a minute ---------------------------------------


def test_each_enqueued_range_records_when_it_was_dispatched_and_claimed(
    issue, settings, run_on_commit
):
    settings.NEWSLETTER_BATCH_SIZE = 2
    Issue.objects.filter(pk=issue.pk).update(status="draft")
    SubscriberFactory.create_batch(5)
    with run_on_commit():
        issue_start_sending(issue=issue)
    ranges = list(BatchDispatch.objects.filter(issue=issue).order_by("first_id"))
    assert len(ranges) == 3
    assert all(r.dispatched_at and r.claimed_at and r.done_at for r in ranges)
    assert Issue.objects.get(pk=issue.pk).status == "sent"


def test_the_watchdog_enqueues_again_a_range_dispatched_but_never_claimed(
    issue, settings, run_on_commit, empty_broker_queue
):
    readers = SubscriberFactory.create_batch(3)
    first, last = snapshot(issue)
    lost = timezone.now() - timedelta(seconds=settings.NEWSLETTER_DISPATCH_GRACE_SECONDS + 5)
    BatchDispatch.objects.create(
        issue=issue, first_id=first, last_id=last, dispatched_at=lost, due_at=lost
    )
    with run_on_commit():
        assert reclaim_expired_leases() == 1
    assert sorted(Delivery.objects.values_list("subscriber__email", "status")) == sorted(
        (r.email, "sent") for r in readers
    )
    assert BatchDispatch.objects.get().dispatch_count == 2


def test_the_watchdog_leaves_a_range_that_is_still_within_its_grace_alone(issue, run_on_commit):
    SubscriberFactory.create_batch(2)
    first, last = snapshot(issue)
    now = timezone.now()
    BatchDispatch.objects.create(
        issue=issue, first_id=first, last_id=last, dispatched_at=now, due_at=now
    )
    with run_on_commit():
        assert reclaim_expired_leases() == 0
    assert set(Delivery.objects.values_list("status", flat=True)) == {"queued"}


@pytest.mark.services
def test_the_watchdog_does_not_double_a_backlog_the_broker_still_holds(
    issue, settings, empty_broker_queue
):
    from config.celery import app
    from newsletter.tasks import send_batch

    SubscriberFactory.create_batch(2)
    first, last = snapshot(issue)
    late = timezone.now() - timedelta(seconds=settings.NEWSLETTER_DISPATCH_GRACE_SECONDS + 5)
    BatchDispatch.objects.create(
        issue=issue, first_id=first, last_id=last, dispatched_at=late, due_at=late
    )
    send_batch.apply_async((issue.pk, first, last))  # still waiting in the queue: busy workers
    try:
        assert reclaim_expired_leases() == 0
    finally:
        app.control.purge()  # the queue is lost, as in a Redis restart
    assert reclaim_expired_leases() == 1
    app.control.purge()


def test_a_retry_defers_the_dispatch_record_to_its_countdown(esp, issue):
    SubscriberFactory.create_batch(2)
    esp.fail_next(1, status=500)
    first, last = snapshot(issue)
    BatchDispatch.objects.create(
        issue=issue,
        first_id=first,
        last_id=last,
        dispatched_at=timezone.now(),
        due_at=timezone.now(),
    )
    result = delivery_batch_send(issue_id=issue.pk, first_id=first, last_id=last)
    record = BatchDispatch.objects.get()
    assert record.claimed_at is None and record.done_at is None
    waited = (record.due_at - record.dispatched_at).total_seconds()
    assert waited == result.retry_in


def test_a_working_batch_renews_its_lease(issue, settings):
    assert settings.NEWSLETTER_LEASE_SECONDS == 60  # the default: short, renewed
    SubscriberFactory.create_batch(2)
    first, last = snapshot(issue)
    token = uuid.uuid4()
    past = timezone.now() - timedelta(seconds=50)
    deliveries_claim(issue_id=issue.pk, first_id=first, last_id=last, token=token, now=past)
    assert lease_renew(token) == 2
    lease = Delivery.objects.values_list("lease_until", flat=True).first()
    assert lease > timezone.now() + timedelta(seconds=55)


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_renews_the_lease_while_the_batch_works(issue):
    SubscriberFactory.create_batch(2)
    first, last = snapshot(issue)
    token = uuid.uuid4()
    past = timezone.now() - timedelta(seconds=50)
    deliveries_claim(issue_id=issue.pk, first_id=first, last_id=last, token=token, now=past)
    with LeaseHeartbeat(token, every=0.05) as heartbeat:
        deadline = timezone.now() + timedelta(seconds=10)
        while heartbeat.beats < 2 and timezone.now() < deadline:
            pass
    assert heartbeat.beats >= 2
    assert Delivery.objects.filter(lease_until__gt=timezone.now()).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_batch_slower_than_its_lease_keeps_its_rows(esp, issue, settings):
    settings.NEWSLETTER_LEASE_SECONDS = 1  # renewed every third of a second
    SubscriberFactory.create_batch(2)
    first, last = snapshot(issue)
    esp.delay = 2.5  # the one ESP call takes longer than the lease
    results = []

    def work() -> None:
        try:
            results.append(delivery_batch_send(issue_id=issue.pk, first_id=first, last_id=last))
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    time.sleep(1.8)  # the lease taken at the claim has run out by now
    try:
        assert (
            Delivery.objects.filter(status="sending", lease_until__gt=timezone.now()).count() == 2
        )
        # Another worker (the watchdog's redelivery) finds nothing to take.
        other = deliveries_claim(
            issue_id=issue.pk, first_id=first, last_id=last, token=uuid.uuid4(), now=timezone.now()
        )
        assert other == []
    finally:
        worker.join(timeout=30)
    assert results[0].sent == 2 and esp.total == 2


@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_a_database_error_hands_the_rows_back_for_the_retry_at_once(issue, monkeypatch, error):
    SubscriberFactory.create_batch(3)
    first, last = snapshot(issue)

    def gone(issue):
        raise error("terminating connection due to administrator command")

    monkeypatch.setattr("newsletter.sending.batch.digest_build", gone)
    with pytest.raises(error):
        delivery_batch_send(issue_id=issue.pk, first_id=first, last_id=last)
    # Not left leased for a minute: queued again, the attempt given back.
    assert (
        list(Delivery.objects.values_list("status", "attempts", "claim_token"))
        == [("queued", 0, None)] * 3
    )
    monkeypatch.undo()
    assert delivery_batch_send(issue_id=issue.pk, first_id=first, last_id=last).sent == 3


def test_a_database_error_after_sending_sends_nobody_twice(esp, issue, monkeypatch):
    readers = SubscriberFactory.create_batch(3)
    first, last = snapshot(issue)

    def gone(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("newsletter.sending.batch.ledger_settle", gone)
    with pytest.raises(OperationalError):
        delivery_batch_send(issue_id=issue.pk, first_id=first, last_id=last)
    assert esp.total == 3
    monkeypatch.undo()
    # The retry takes the rows at once (their lease was ended) and finds them sent.
    result = delivery_batch_send(issue_id=issue.pk, first_id=first, last_id=last)
    assert (result.claimed, result.recovered, result.sent) == (3, 3, 3)
    assert esp.total == 3 and all(esp.received_count[r.email.lower()] == 1 for r in readers)
    assert not InterruptedCall.objects.exists()  # no call was in flight


# --- 5. The duplicate window is visible --------------------------------------------------------


def test_a_call_that_times_out_is_counted_as_possible_duplicates_in_the_report(
    esp, issue, settings, client
):
    settings.ANYMAIL = {**settings.ANYMAIL, "REQUESTS_TIMEOUT": 0.3}
    readers = SubscriberFactory.create_batch(3)
    esp.delay = 1  # the ESP takes the call, but answers after the client gave up
    result = send_in_one_batch(issue)
    assert result.requeued == 3
    (call,) = InterruptedCall.objects.filter(issue=issue)
    assert call.recipients == 3 and "Timeout" in call.error
    esp.delay = 0
    ids = list(Delivery.objects.values_list("id", flat=True))
    delivery_batch_send(issue_id=issue.pk, first_id=min(ids), last_id=max(ids))
    # The ESP did take the first call: these readers have two copies, as reported.
    wait_for(lambda: esp.total == 6, timeout=5)
    assert all(esp.received_count[r.email.lower()] == 2 for r in readers)

    issue.refresh_from_db()
    assert issue_report(issue=issue).possible_duplicates == 3
    client.force_login(StaffUserFactory(username="chen", groups=["Publishers"]))
    page = client.get(reverse("newsletter_reports:issue", args=[issue.pk]))
    assert "possible duplicates: 3 (calls interrupted in flight)" in page.content.decode()


def test_a_connection_dropped_after_sending_is_counted_as_possible_duplicates(esp, issue):
    readers = SubscriberFactory.create_batch(3)
    esp.drop_next(1)  # the ESP takes the call, then the connection drops before its answer
    result = send_in_one_batch(issue)
    assert (result.sent, result.requeued) == (0, 3)
    (call,) = InterruptedCall.objects.filter(issue=issue)
    assert call.recipients == 3 and "Connection" in call.error

    ids = list(Delivery.objects.values_list("id", flat=True))
    assert delivery_batch_send(issue_id=issue.pk, first_id=min(ids), last_id=max(ids)).sent == 3
    assert all(esp.received_count[r.email.lower()] == 2 for r in readers)
    issue.refresh_from_db()
    assert issue.status == "sent" and issue_report(issue=issue).possible_duplicates == 3


def test_a_refused_connection_is_not_a_possible_duplicate():
    try:
        requests.post("http://127.0.0.1:9/", timeout=1)
    except requests.RequestException as exc:
        refused = exc
    assert not is_ambiguous(refused)
    assert is_ambiguous(requests.ReadTimeout("read timed out"))
