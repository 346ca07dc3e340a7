"""Claim: take a range's rows with a lease, keep the lease alive, give rows back.

A claim leases its rows for NEWSLETTER_LEASE_SECONDS (60 s). While the batch works,
a heartbeat thread renews the lease every third of that, so a slow ESP, a throttled
rate or a long batch never loses its rows to another worker; a worker that dies
stops beating, and its rows are claimable again within one lease (reclaim). The
next claimer reads the dead claim's send journal (journal.py) to settle what it had
already sent instead of sending it again.

The heartbeat thread has its own database connection (Django's are per thread) and
closes it when the batch ends. A renewal that fails (the database went away) is
logged: the batch itself meets the same error on its next query and is retried.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from newsletter.models import Delivery, Subscriber
from newsletter.sending.journal import journal_note
from newsletter.sending.retry import hop

logger = logging.getLogger(__name__)
Status = Delivery.Status


def claimable(now: datetime) -> Q:
    # Queued rows, and rows whose sender died: its lease ran out before it marked them.
    return Q(status=Status.QUEUED) | Q(status=Status.SENDING, lease_until__lt=now)


def deliveries_claim(
    *, issue_id: int, first_id: int, last_id: int, token: uuid.UUID, now: datetime
) -> list[tuple[int, uuid.UUID | None]]:
    """Claim the range's sendable rows for this run and lease them.

    Return (row id, the claim token it carried before) for each claimed row; a
    previous token means a dead worker's lease ran out, and its journal says which
    of those rows it had already sent.

    On PostgreSQL, FOR UPDATE SKIP LOCKED lets concurrent workers claim disjoint rows
    without waiting on each other. SQLite has no row locks but runs one write
    transaction at a time (BEGIN IMMEDIATE), and the UPDATE re-checks the status, so
    two claims never take the same row there either.
    """
    with transaction.atomic():
        picked = list(
            Delivery.objects.filter(
                claimable(now), issue_id=issue_id, id__gte=first_id, id__lte=last_id
            )
            .select_for_update(skip_locked=True)
            .order_by("id")
            .values_list("id", "claim_token")
        )
        if not picked:
            return []
        Delivery.objects.filter(claimable(now), pk__in=[pk for pk, _ in picked]).update(
            status=Status.SENDING,
            claim_token=token,
            lease_until=now + timedelta(seconds=settings.NEWSLETTER_LEASE_SECONDS),
            attempts=F("attempts") + 1,
        )
    return picked


@dataclass(slots=True)
class Reader:
    """What sending needs of a subscriber, read without building model instances.

    Quacks like a Subscriber for the token generator and the message builders.
    """

    pk: int
    email: str
    status: str
    paused_until: datetime | None
    token_secret: str
    newsletter_id: int
    language: str  # issue 14: the edition this reader gets


@dataclass(slots=True)
class Row:
    pk: int
    attempts: int
    subscriber: Reader


def claimed_rows(token: uuid.UUID, ids: list[int]) -> list[Row]:
    """Return the claimed rows with their readers, in id order (one query)."""
    return [
        Row(pk, attempts, Reader(*reader))
        for pk, attempts, *reader in Delivery.objects.filter(pk__in=ids, claim_token=token)
        .order_by("id")
        .values_list(
            "id",
            "attempts",
            "subscriber_id",
            "subscriber__email",
            "subscriber__status",
            "subscriber__paused_until",
            "subscriber__token_secret",
            "subscriber__newsletter_id",
            "subscriber__language",
        )
    ]


def chosen_categories(rows: list[Row]) -> dict[int, list[int]]:
    """Return {subscriber id: the category ids they chose} for the rows' readers (one query)."""
    chosen: dict[int, list[int]] = defaultdict(list)
    for subscriber_id, category_id in Subscriber.categories.through.objects.filter(
        subscriber_id__in=[row.subscriber.pk for row in rows]
    ).values_list("subscriber_id", "category_id"):
        chosen[subscriber_id].append(category_id)
    return chosen


def claim_release(token: uuid.UUID, *, sent: dict[int, str], now: datetime) -> None:
    """Hand a claim back after the database went away under it.

    Rows not yet sent go back to the queue with their attempt given back; rows
    already sent keep the claim's token, with the lease ended, so that the next
    claim settles them from the send journal instead of sending them again (noted
    under this claim, rows recovered from a dead one included). If the database is
    still away, the lease ends on its own within NEWSLETTER_LEASE_SECONDS.
    """
    journal_note(token, sent)
    if not connection.in_atomic_block:  # a task's own connection: open a fresh one
        connection.close()
    try:
        held = Delivery.objects.filter(claim_token=token, status=Status.SENDING)
        held.filter(pk__in=list(sent)).update(lease_until=now - timedelta(seconds=1))
        held.exclude(pk__in=list(sent)).update(
            status=Status.QUEUED, claim_token=None, lease_until=None, attempts=F("attempts") - 1
        )
    except (OperationalError, InterfaceError):
        if not connection.in_atomic_block:
            connection.close()


def live_lease_wait(*, issue_id: int, first_id: int, last_id: int, now: datetime) -> int | None:
    """Return seconds until the earliest live lease in the range ends, if another run holds rows.

    A redelivered task can find its rows still leased by a worker that died; it
    comes back when the lease has run out instead of leaving them stranded.
    """
    lease = (
        Delivery.objects.filter(
            issue_id=issue_id,
            id__gte=first_id,
            id__lte=last_id,
            status=Status.SENDING,
            lease_until__gte=now,
        )
        .order_by("lease_until")
        .values_list("lease_until", flat=True)
        .first()
    )
    if lease is None:
        return None
    return hop((lease - now).total_seconds() + 1)  # a countdown below the visibility timeout


def lease_renew(token: uuid.UUID) -> int:
    """Extend the lease of the rows this claim still holds; return how many."""
    until = timezone.now() + timedelta(seconds=settings.NEWSLETTER_LEASE_SECONDS)
    return Delivery.objects.filter(claim_token=token, status=Delivery.Status.SENDING).update(
        lease_until=until
    )


class LeaseHeartbeat:
    """Renew the claim's lease every third of NEWSLETTER_LEASE_SECONDS until stopped.

    with LeaseHeartbeat(token):
        ... send ...
    """

    def __init__(self, token: uuid.UUID, *, every: float | None = None) -> None:
        self.token = token
        self.every = every or settings.NEWSLETTER_LEASE_SECONDS / 3
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"lease-{token}", daemon=True)
        self.beats = 0

    def _beat(self) -> None:
        try:
            while not self.stopped.wait(self.every):
                try:
                    lease_renew(self.token)
                    self.beats += 1
                except Exception:
                    logger.exception("lease heartbeat of claim %s failed", self.token)
                    connection.close()  # a broken connection is opened anew next beat
        finally:
            connection.close()

    def __enter__(self) -> LeaseHeartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)
