"""The batch engine: crash recovery from the send journal, leases, retries, rate, variants."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from newsletter.models import Delivery, Issue
from newsletter.sending import render
from newsletter.sending.batch import delivery_batch_send
from newsletter.sending.claim import deliveries_claim
from newsletter.sending.journal import journal_note
from newsletter.sending.ratelimit import LocalRateLimiter, throttle
from newsletter.sending.retry import retry_delay
from newsletter.tasks import reclaim_expired_leases
from tests.factories import SubscriberFactory
from tests.sending_steps import snapshot

pytestmark = pytest.mark.django_db


def test_rows_a_dead_worker_had_sent_are_settled_from_the_journal_not_sent_again(issue):
    readers = SubscriberFactory.create_batch(5)
    first, last = snapshot(issue)
    dead = uuid.uuid4()
    earlier = timezone.now() - timedelta(hours=1)
    deliveries_claim(issue_id=issue.pk, first_id=first, last_id=last, token=dead, now=earlier)
    done = Delivery.objects.filter(subscriber__in=readers[:3])
    journal_note(dead, {d.pk: f"<sent-{d.pk}@esp>" for d in done})  # it sent 3, then died

    result = delivery_batch_send(issue_id=issue.pk, first_id=first, last_id=last)

    assert (result.recovered, result.sent) == (3, 5)
    assert sorted(m.to[0] for m in mail.outbox) == sorted(r.email for r in readers[3:])
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    assert Delivery.objects.get(subscriber=readers[0]).esp_message_id.startswith("<sent-")
    issue.refresh_from_db()
    assert (issue.sent_count, issue.status) == (5, "sent")


def test_rows_under_a_live_lease_are_left_alone_and_the_task_comes_back_after_it(issue):
    SubscriberFactory.create_batch(2)
    first, last = snapshot(issue)
    deliveries_claim(
        issue_id=issue.pk, first_id=first, last_id=last, token=uuid.uuid4(), now=timezone.now()
    )
    result = delivery_batch_send(issue_id=issue.pk, first_id=first, last_id=last)
    assert result.claimed == 0 and mail.outbox == []
    assert 0 < result.retry_in <= 61  # the 60 s lease, not the old 15 minutes


def test_the_reclaim_task_sends_rows_whose_lease_ran_out(issue, run_on_commit):
    readers = SubscriberFactory.create_batch(3)
    first, last = snapshot(issue)
    deliveries_claim(
        issue_id=issue.pk,
        first_id=first,
        last_id=last,
        token=uuid.uuid4(),
        now=timezone.now() - timedelta(hours=1),
    )
    with run_on_commit():
        reclaim_expired_leases()
    assert sorted(m.to[0] for m in mail.outbox) == sorted(r.email for r in readers)
    assert Issue.objects.get(pk=issue.pk).status == "sent"


def test_each_variant_is_rendered_once_per_batch_not_once_per_reader(
    issue, finance, energy, monkeypatch
):
    for _ in range(4):
        SubscriberFactory().categories.set([finance])
    for _ in range(4):
        SubscriberFactory().categories.set([energy])
    SubscriberFactory.create_batch(4)
    renders = []
    real = render.variant_render
    monkeypatch.setattr(
        render,
        "variant_render",
        lambda digest, variant: renders.append(variant) or real(digest, variant),
    )
    first, last = snapshot(issue)
    result = delivery_batch_send(issue_id=issue.pk, first_id=first, last_id=last)
    assert result.sent == 12 and len(mail.outbox) == 12
    assert sorted(renders) == sorted({(finance.pk,), (energy.pk,), (finance.pk, energy.pk)})


def test_after_the_last_attempt_the_rows_fail_with_the_reason(issue, settings, monkeypatch):
    settings.NEWSLETTER_MAX_ATTEMPTS = 2
    SubscriberFactory.create_batch(2)
    first, last = snapshot(issue)

    def down(*args, **kwargs):
        raise ConnectionRefusedError("ESP unreachable")

    monkeypatch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", down)
    assert delivery_batch_send(issue_id=issue.pk, first_id=first, last_id=last).requeued == 2
    result = delivery_batch_send(issue_id=issue.pk, first_id=first, last_id=last)
    assert result.failed == 2 and result.retry_in is None
    row = Delivery.objects.first()
    assert row.status == "failed" and row.last_error.startswith(
        "gave up after 2 attempts: ConnectionRefusedError"
    )
    assert Issue.objects.get(pk=issue.pk).status == "sent"


@pytest.mark.parametrize("visibility", [60, 3600, 43200])
def test_every_retry_delay_stays_below_the_brokers_visibility_timeout(settings, visibility):
    settings.CELERY_VISIBILITY_TIMEOUT = visibility
    delays = [retry_delay(attempt, jitter=j / 10) for attempt in range(1, 30) for j in range(11)]
    assert max(delays) < visibility
    assert retry_delay(1, jitter=1) > retry_delay(1, jitter=0)  # jittered
    if visibility > 240:
        assert retry_delay(1, jitter=0) < retry_delay(2, jitter=0) < retry_delay(3, jitter=0)


def test_the_rate_limiter_hands_out_back_to_back_slots_whoever_asks():
    clock = [100.0]
    limiter = LocalRateLimiter(rate=50, clock=lambda: clock[0])
    a, b, c = limiter.reserve(100), limiter.reserve(50), limiter.reserve(1)
    assert (a.start, b.start, c.start) == (100.0, 102.0, 103.0)  # 100 messages take 2 s at 50/s
    assert (a.wait, b.wait, c.wait) == (0.0, 2.0, 3.0)
    clock[0] = 200.0  # idle time is not banked as a burst
    assert limiter.reserve(10).start == 200.0


def test_throttle_waits_only_when_a_rate_is_set(settings):
    waits = []
    settings.NEWSLETTER_SEND_RATE = 0
    assert throttle(500, sleep=waits.append) == 0 and waits == []
    settings.NEWSLETTER_SEND_RATE = 1000
    throttle(500, sleep=waits.append)
    throttle(500, sleep=waits.append)
    assert (
        len(waits) == 1 and 0.4 < waits[0] <= 0.5
    )  # the second 500 waits for the first's half second


@pytest.mark.services
def test_workers_share_one_schedule_through_redis(settings):
    """Two limiters (two workers) get back-to-back slots from the one Redis schedule."""
    from newsletter.sending.ratelimit import RedisRateLimiter

    key = f"test:sendrate:{uuid.uuid4()}"
    worker_a = RedisRateLimiter(settings.REDIS_CACHE_URL, rate=10, key=key)
    worker_b = RedisRateLimiter(settings.REDIS_CACHE_URL, rate=10, key=key)
    slots = [worker_a.reserve(100), worker_b.reserve(50), worker_a.reserve(10)]
    worker_a.client.delete(key)
    starts = [round(slot.start - slots[0].start, 3) for slot in slots]
    assert starts == [0.0, 10.0, 15.0]  # 100 messages at 10/s hold the schedule for 10 s
    assert slots[1].wait > 9 and slots[2].wait > 14


def test_the_fan_out_cuts_queued_rows_into_keyset_ranges_of_the_batch_size(issue):
    from newsletter.sending.fanout import batch_ranges

    SubscriberFactory.create_batch(7)
    snapshot(issue)
    ids = list(Delivery.objects.filter(issue=issue).order_by("id").values_list("id", flat=True))
    Delivery.objects.filter(pk=ids[1]).update(status="sent")  # not queued: left out
    queued = [pk for pk in ids if pk != ids[1]]
    assert list(batch_ranges(issue=issue, size=3)) == [
        (queued[0], queued[2]),
        (queued[3], queued[5]),
    ]
