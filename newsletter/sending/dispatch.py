"""Dispatch records and the watchdog: notice within a minute when a range is lost.

The broker is how work travels, not the record of it: a Redis restart without
persistence loses the queue, a killed worker its task. Every enqueue of a range is
recorded (BatchDispatch: dispatched, due, claimed; fanout.py writes it, a batch
notes its claim and its end here), and beat's watchdog, every
NEWSLETTER_WATCH_SECONDS (30 s), enqueues again:

- a range dispatched but not claimed within NEWSLETTER_DISPATCH_GRACE_SECONDS (60 s)
  of when it was due, while the broker's queue holds fewer tasks than such ranges
  (so a backlog that workers are still working through is not doubled);
- a range with rows whose lease ran out: its worker died (a live batch renews its
  lease every third of NEWSLETTER_LEASE_SECONDS, see claim.py);
- a range claimed long ago whose rows are back in the queue with no task on the way
  (the worker died holding the retry).

A range enqueued twice is harmless: the claim is atomic, so the second run finds
nothing to claim and ends. The watchdog also starts the fan-out again of an issue
whose ledger stopped growing for the same grace (its task was lost or its worker
died); it goes on from its cursor (fanout.py).
"""

from __future__ import annotations

import bisect
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from newsletter.models import BatchDispatch, Delivery, Issue
from newsletter.sending.claim import claimable
from newsletter.sending.fanout import fan_out_enqueue, ranges_dispatch

logger = logging.getLogger(__name__)
Status = Delivery.Status


def dispatch_claimed(*, issue_id: int, first_id: int, last_id: int, now: datetime) -> None:
    """Note that a worker has taken the range up."""
    BatchDispatch.objects.filter(issue_id=issue_id, first_id=first_id, last_id=last_id).update(
        claimed_at=now
    )


def dispatch_deferred(
    *, issue_id: int, first_id: int, last_id: int, seconds: int, now: datetime
) -> None:
    """Note that the range's task comes back in `seconds` (a retry's countdown)."""
    BatchDispatch.objects.filter(issue_id=issue_id, first_id=first_id, last_id=last_id).update(
        dispatched_at=now,
        due_at=now + timedelta(seconds=seconds),
        claimed_at=None,
        done_at=None,
    )


def dispatch_done(*, issue_id: int, first_id: int, last_id: int, now: datetime) -> None:
    """Note that the range has nothing left to send; the watchdog stops looking at it."""
    BatchDispatch.objects.filter(
        issue_id=issue_id, first_id=first_id, last_id=last_id, done_at__isnull=True
    ).update(done_at=now)


def broker_backlog() -> int:
    """Return how many tasks wait in the broker's default queue (0 when it cannot tell)."""
    from config.celery import app

    try:
        with app.connection_for_read() as conn:
            client = conn.default_channel.client
            return int(client.llen(app.conf.task_default_queue or "celery"))
    except Exception:  # memory broker in process, or the broker is down: assume lost
        return 0


def dispatches_watch(*, now: datetime | None = None) -> int:
    """Enqueue again every range of a sending issue that was lost or stalled; return how many."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.NEWSLETTER_DISPATCH_GRACE_SECONDS)
    lease = timedelta(seconds=settings.NEWSLETTER_LEASE_SECONDS)
    sending = list(Issue.objects.filter(status=Issue.Status.SENDING).values_list("pk", flat=True))
    if not sending:
        return 0
    fan_outs_resume(now=now, grace=grace)
    opened = BatchDispatch.objects.filter(issue_id__in=sending, done_at__isnull=True)

    # Rows whose worker died: their lease ran out. Map them to the ranges that hold them.
    expired = list(
        Delivery.objects.filter(
            issue_id__in=sending, status=Status.SENDING, lease_until__lt=now
        ).values_list("issue_id", "id")[: settings.NEWSLETTER_BATCH_SIZE * 50]
    )
    redo: dict[int, set[tuple[int, int]]] = {}
    if expired:
        ranges: dict[int, list[tuple[int, int]]] = {}
        for issue_id, first, last in (
            BatchDispatch.objects.filter(issue_id__in={i for i, _ in expired})
            .order_by("first_id")
            .values_list("issue_id", "first_id", "last_id")
        ):
            ranges.setdefault(issue_id, []).append((first, last))
        orphans: dict[int, list[int]] = {}
        for issue_id, pk in expired:
            found = _range_holding(ranges.get(issue_id, []), pk)
            if found:
                redo.setdefault(issue_id, set()).add(found)
            else:
                orphans.setdefault(issue_id, []).append(pk)
        for issue_id, pks in orphans.items():  # rows of a range enqueued before records
            size = settings.NEWSLETTER_BATCH_SIZE
            for start in range(0, len(pks), size):
                chunk = pks[start : start + size]
                redo.setdefault(issue_id, set()).add((chunk[0], chunk[-1]))

    # Ranges never claimed: lost on the broker, unless its queue still holds that many.
    unclaimed = list(
        opened.filter(claimed_at__isnull=True, due_at__lt=now - grace).values_list(
            "pk", "issue_id", "first_id", "last_id"
        )
    )
    # Ranges claimed long ago and not done: their retry may have died with a worker.
    stale = list(
        opened.filter(claimed_at__lt=now - lease - grace).values_list(
            "pk", "issue_id", "first_id", "last_id"
        )
    )
    if unclaimed and broker_backlog() >= len(unclaimed):
        unclaimed = []
    for pk, issue_id, first, last in unclaimed + stale:
        if (first, last) in redo.get(issue_id, ()):
            continue
        rows = Delivery.objects.filter(issue_id=issue_id, id__gte=first, id__lte=last)
        if rows.filter(claimable(now)).exists():
            redo.setdefault(issue_id, set()).add((first, last))
        elif not rows.filter(status=Status.SENDING).exists():
            BatchDispatch.objects.filter(pk=pk).update(done_at=now)

    count = 0
    for issue_id, ranges_ in redo.items():
        with transaction.atomic():
            count += ranges_dispatch(issue_id=issue_id, ranges=sorted(ranges_), now=now)
    if count:
        logger.warning("send watchdog: enqueued %s lost or stalled ranges again", count)
    return count


def fan_outs_resume(*, now: datetime, grace: timedelta) -> int:
    """Start again the fan-out of each sending issue whose ledger stopped growing."""
    stalled = list(
        Issue.objects.filter(
            status=Issue.Status.SENDING,
            fanout_done_at__isnull=True,
            fanout_moved_at__lt=now - grace,
        ).values_list("pk", flat=True)
    )
    for pk in stalled:
        with transaction.atomic():
            Issue.objects.filter(pk=pk).update(fanout_moved_at=now)  # once per grace
            fan_out_enqueue(issue_id=pk)
    if stalled:
        logger.warning("send watchdog: started the fan-out of issues %s again", stalled)
    return len(stalled)


def _range_holding(ranges: list[tuple[int, int]], pk: int) -> tuple[int, int] | None:
    """Return the range (sorted by first id) whose ids include pk, if any."""
    at = bisect.bisect_right([first for first, _ in ranges], pk) - 1
    if at >= 0 and ranges[at][0] <= pk <= ranges[at][1]:
        return ranges[at]
    return None
