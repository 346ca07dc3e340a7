"""Fan-out: snapshot an issue's readers into the Delivery ledger and enqueue its ranges.

Services start a send here (services/issues.py); this is the one module that hands
work to the broker, so the direction stays one way: services enqueue tasks, and
tasks call services. Every enqueue is recorded (BatchDispatch) so that beat's
watchdog (dispatch.py) notices a range lost on the broker.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from config.celery import enqueue
from newsletter.models import BatchDispatch, Delivery, Issue, Subscriber

# The task this module enqueues, by name: tasks import the pipeline, never the reverse.
SEND_BATCH = "newsletter.tasks.send_batch"


def issue_fan_out(*, issue: Issue, now: datetime) -> int:
    """Write one queued row per eligible reader and enqueue a task per range; return the rows.

    Call it inside the transaction that claimed the issue: the tasks go to the
    broker once it commits. An issue with no reader still gets one (empty) range,
    whose task finishes the issue.
    """
    queued = deliveries_snapshot(issue=issue, now=now)
    ranges = list(batch_ranges(issue=issue, size=settings.NEWSLETTER_BATCH_SIZE))
    ranges_dispatch(issue_id=issue.pk, ranges=ranges or [(0, 0)], now=now)
    return queued


def queued_fan_out(*, issue: Issue, now: datetime) -> int:
    """Enqueue the issue's queued rows again ("Retry failed"); return how many ranges."""
    ranges = batch_ranges(issue=issue, size=settings.NEWSLETTER_BATCH_SIZE)
    return ranges_dispatch(issue_id=issue.pk, ranges=ranges, now=now)


def deliveries_snapshot(*, issue: Issue, now: datetime) -> int:
    """Write one queued Delivery per eligible reader in a single INSERT … SELECT.

    Eligible: active and not paused at `now`. The unique (issue, subscriber)
    constraint with ON CONFLICT DO NOTHING makes a repeated snapshot add only readers
    who were not there yet, never a second row. Returns the rows added.

    Rows are written grouped by what decides a reader's variant (language, then the
    categories chosen), so that each keyset batch holds one or two variants and the
    ESP path sends calls of up to the ESP's limit instead of a handful of small ones.
    """
    delivery = Delivery._meta.db_table
    subscriber = Subscriber._meta.db_table
    chosen = Subscriber.categories.through._meta.db_table
    stamp = connection.ops.adapt_datetimefield_value(now)
    sql = f"""
        INSERT INTO {delivery}
            (issue_id, subscriber_id, status, variant, esp_message_id, attempts, last_error,
             created_at, open_count, click_count)
        SELECT %s, s.id, %s, '', '', 0, '', %s, 0, 0
        FROM {subscriber} s
        WHERE s.newsletter_id = %s AND s.status = %s
          AND (s.paused_until IS NULL OR s.paused_until <= %s)
        ORDER BY s.language,
                 (SELECT MIN(c.category_id) * 1000003 + COUNT(*) + SUM(c.category_id)
                  FROM {chosen} c WHERE c.subscriber_id = s.id),
                 s.id
        ON CONFLICT (issue_id, subscriber_id) DO NOTHING
    """  # noqa: S608 - table names come from model metadata, values are parameters
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                issue.pk,
                Delivery.Status.QUEUED,
                stamp,
                issue.newsletter_id,
                Subscriber.Status.ACTIVE,
                stamp,
            ],
        )
        return max(cursor.rowcount, 0)


def batch_ranges(*, issue: Issue, size: int) -> Iterator[tuple[int, int]]:
    """Yield (first_id, last_id) keyset ranges of at most `size` queued rows each.

    Cut by the database in one query (row numbers in id order, bucketed), so the
    ids of a large list never travel to Python.
    """
    delivery = Delivery._meta.db_table
    sql = f"""
        SELECT MIN(id), MAX(id) FROM (
            SELECT id, (ROW_NUMBER() OVER (ORDER BY id) - 1) / %s AS bucket
            FROM {delivery}
            WHERE issue_id = %s AND status = %s
        ) numbered
        GROUP BY bucket
        ORDER BY bucket
    """  # noqa: S608 - the table name comes from model metadata, values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, [size, issue.pk, Delivery.Status.QUEUED])
        yield from ((first, last) for first, last in cursor.fetchall())


def ranges_dispatch(
    *, issue_id: int, ranges: Iterable[tuple[int, int]], now: datetime | None = None
) -> int:
    """Record and enqueue each (first id, last id) range of an issue; return how many.

    The tasks go to the broker once the surrounding transaction commits, so no worker
    looks for rows that are not there yet.
    """
    now = now or timezone.now()
    ranges = list(ranges)
    existing = {
        (first, last): pk
        for pk, first, last in BatchDispatch.objects.filter(
            issue_id=issue_id, first_id__in=[first for first, _ in ranges]
        ).values_list("pk", "first_id", "last_id")
    }
    fresh = [
        BatchDispatch(
            issue_id=issue_id, first_id=first, last_id=last, dispatched_at=now, due_at=now
        )
        for first, last in ranges
        if (first, last) not in existing
    ]
    BatchDispatch.objects.bulk_create(fresh)
    again = [existing[r] for r in ranges if r in existing]
    if again:
        BatchDispatch.objects.filter(pk__in=again).update(
            dispatched_at=now,
            due_at=now,
            claimed_at=None,
            done_at=None,
            dispatch_count=F("dispatch_count") + 1,
        )
    for first, last in ranges:
        batch_enqueue(issue_id=issue_id, first_id=first, last_id=last)
    return len(ranges)


def batch_enqueue(*, issue_id: int, first_id: int, last_id: int) -> None:
    """Hand one range's task to the broker when the surrounding transaction commits."""
    enqueue(SEND_BATCH, issue_id, first_id, last_id)
