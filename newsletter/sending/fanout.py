"""Fan-out: write an issue's readers into the Delivery ledger and enqueue its ranges.

Services start a send here (services/issues.py); this is the one module that hands
work to the broker, so the direction stays one way: services enqueue tasks, and
tasks call services. Every enqueue is recorded (BatchDispatch) so that beat's
watchdog (dispatch.py) notices a range lost on the broker.

The ledger is written in chunks of readers, by reader id, each chunk in its own
transaction that enqueues the chunk's ranges as it commits: the first batches are
sent while later chunks are still being written, instead of after the whole list
(at 100,000 readers the one big INSERT took a sixth of the send). The issue keeps
the cursor (the highest reader id written), when it last moved and when the last
chunk was written; it is marked sent only after that. A fan-out that dies (a killed
worker, a task lost with the broker) stops moving, and the watchdog starts another,
which goes on from the cursor.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from config.celery import enqueue
from newsletter.models import BatchDispatch, Delivery, Issue, Subscriber
from newsletter.selectors.issues import readers_eligible

# The tasks this module enqueues, by name: tasks import the pipeline, never the reverse.
SEND_BATCH = "newsletter.tasks.send_batch"
FAN_OUT = "newsletter.tasks.fan_out_issue"

# Readers per chunk, in batches: small enough that the first batch starts within a
# fraction of a second, large enough that few batches straddle two variants.
CHUNK_BATCHES = 10


def fan_out_start(*, issue: Issue, now: datetime) -> int:
    """Start the fan-out of an issue just claimed for sending; return its eligible readers.

    Call it inside the transaction that claimed the issue: the fan-out task goes to
    the broker once that commits, so "Send now" answers at once even for a million
    readers. The count is of the readers eligible now; the ledger holds them once the
    fan-out has run.
    """
    Issue.objects.filter(pk=issue.pk).update(
        fanout_cursor=0, fanout_moved_at=now, fanout_done_at=None, recipients_count=0
    )
    fan_out_enqueue(issue_id=issue.pk)
    return readers_eligible(newsletter_id=issue.newsletter_id, now=now).count()


def fan_out_enqueue(*, issue_id: int) -> None:
    """Hand the issue's fan-out to the broker when the surrounding transaction commits."""
    enqueue(FAN_OUT, issue_id)


def issue_fan_out(*, issue_id: int) -> int:
    """Write the ledger of a sending issue chunk by chunk; return the rows this run wrote.

    Two runs at once (the watchdog started one while a slow one still ran) do no harm:
    the cursor moves by compare-and-set, so the run that loses a chunk rolls it back
    and stops, and the unique (issue, reader) constraint keeps one row per reader.
    """
    written, more = 0, True
    while more:
        rows, more = fan_out_chunk(issue_id=issue_id)
        written += rows
    return written


def fan_out_chunk(*, issue_id: int) -> tuple[int, bool]:
    """Write and enqueue the next chunk; return its rows and whether more may follow."""
    state = (
        Issue.objects.filter(pk=issue_id, status=Issue.Status.SENDING, fanout_done_at__isnull=True)
        .values("newsletter_id", "send_started_at", "fanout_cursor")
        .first()
    )
    if state is None:  # done, or no longer sending (cancelled, another run finished it)
        return 0, False
    cursor, started = state["fanout_cursor"], state["send_started_at"]
    size = settings.NEWSLETTER_BATCH_SIZE
    now = timezone.now()
    with transaction.atomic():
        # The chunk ends at its last reader; with fewer left than a chunk, it takes
        # every reader after the cursor and is the last.
        end = size * CHUNK_BATCHES
        through = (
            readers_eligible(newsletter_id=state["newsletter_id"], now=started)
            .filter(pk__gt=cursor)
            .order_by("pk")
            .values_list("pk", flat=True)[end - 1 : end]
            .first()
        )
        ids = deliveries_snapshot(
            issue_id=issue_id,
            newsletter_id=state["newsletter_id"],
            now=started,
            after=cursor,
            through=through,
        )
        last = through is None
        moved = Issue.objects.filter(
            pk=issue_id, fanout_cursor=cursor, fanout_done_at__isnull=True
        ).update(
            fanout_cursor=through if through is not None else cursor,
            fanout_moved_at=now,
            fanout_done_at=now if last else None,
            recipients_count=F("recipients_count") + len(ids),
        )
        if not moved:  # another run wrote this chunk first: ours is rolled back
            transaction.set_rollback(True)
            return 0, False
        ranges = list(id_ranges(ids, size=size))
        if last and not ranges:
            # The batches enqueued with the last chunk find the ledger complete when they
            # end; with no rows in it, one empty range does that (an empty issue ends too).
            ranges = [(0, 0)]
        ranges_dispatch(issue_id=issue_id, ranges=ranges, now=now)
    return len(ids), not last


def queued_fan_out(*, issue: Issue, now: datetime) -> int:
    """Enqueue the issue's queued rows again ("Retry failed"); return how many ranges."""
    ranges = batch_ranges(issue=issue, size=settings.NEWSLETTER_BATCH_SIZE)
    return ranges_dispatch(issue_id=issue.pk, ranges=ranges, now=now)


def deliveries_snapshot(
    *,
    issue_id: int,
    newsletter_id: int,
    now: datetime,
    after: int = 0,
    through: int | None = None,
) -> list[int]:
    """Write one queued Delivery per eligible reader with an id in (after, through].

    Eligible: active and not paused at `now`; `through` None means every reader after
    `after`. One INSERT … SELECT; the unique (issue, subscriber) constraint with ON
    CONFLICT DO NOTHING makes a repeated snapshot add only readers who were not there
    yet, never a second row. Returns the ids of the rows added.

    Rows are written grouped by what decides a reader's variant (language, then the
    categories chosen), so that each keyset batch holds one or two variants and the
    ESP path sends calls of up to the ESP's limit instead of a handful of small ones.
    """
    delivery = Delivery._meta.db_table
    subscriber = Subscriber._meta.db_table
    chosen = Subscriber.categories.through._meta.db_table
    stamp = connection.ops.adapt_datetimefield_value(now)
    upper = "AND s.id <= %s" if through is not None else ""
    sql = f"""
        INSERT INTO {delivery}
            (issue_id, subscriber_id, status, variant, esp_message_id, attempts, last_error,
             created_at, open_count, click_count)
        SELECT %s, s.id, %s, '', '', 0, '', %s, 0, 0
        FROM {subscriber} s
        WHERE s.newsletter_id = %s AND s.status = %s
          AND (s.paused_until IS NULL OR s.paused_until <= %s)
          AND s.id > %s {upper}
        ORDER BY s.language,
                 (SELECT MIN(c.category_id) * 1000003 + COUNT(*) + SUM(c.category_id)
                  FROM {chosen} c WHERE c.subscriber_id = s.id),
                 s.id
        ON CONFLICT (issue_id, subscriber_id) DO NOTHING
        RETURNING id
    """  # noqa: S608 - table names come from model metadata, values are parameters
    params = [
        issue_id,
        Delivery.Status.QUEUED,
        stamp,
        newsletter_id,
        Subscriber.Status.ACTIVE,
        stamp,
        after,
    ]
    if through is not None:
        params.append(through)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return sorted(pk for (pk,) in cursor.fetchall())


def id_ranges(ids: list[int], *, size: int) -> Iterator[tuple[int, int]]:
    """Yield (first_id, last_id) ranges of at most `size` of the sorted `ids` each."""
    for start in range(0, len(ids), size):
        yield ids[start], ids[min(start + size, len(ids)) - 1]


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
