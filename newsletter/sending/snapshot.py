"""Snapshot the readers of an issue into the Delivery ledger and split it into batches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from django.db import connection

from newsletter.models import Delivery, Issue, Subscriber


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
