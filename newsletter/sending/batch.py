"""Send one keyset range of an issue's Delivery rows: claim, re-check, render, send, mark."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from newsletter.digest import Variant, digest_build, digest_render
from newsletter.models import Delivery, Issue, Subscriber
from newsletter.sending.errors import describe, retry_delay
from newsletter.sending.messages import digest_message
from newsletter.sending.transport import BatchInterrupted, send_per_message

Status = Delivery.Status


@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    requeued: int = 0
    retry_in: int | None = None  # run this range again after so many seconds


def _claimable(now: datetime) -> Q:
    # Queued rows, and rows whose sender died: its lease ran out before it marked them.
    return Q(status=Status.QUEUED) | Q(status=Status.SENDING, lease_until__lt=now)


def deliveries_claim(
    *, issue_id: int, first_id: int, last_id: int, token: uuid.UUID, now: datetime
) -> list[int]:
    """Claim the range's sendable rows for this run and lease them; return their ids.

    On PostgreSQL, FOR UPDATE SKIP LOCKED lets concurrent workers claim disjoint rows
    without waiting on each other. SQLite has no row locks but runs one write
    transaction at a time (BEGIN IMMEDIATE), and the UPDATE re-checks the status, so
    two claims never take the same row there either.
    """
    with transaction.atomic():
        ids = list(
            Delivery.objects.filter(
                _claimable(now), issue_id=issue_id, id__gte=first_id, id__lte=last_id
            )
            .select_for_update(skip_locked=True)
            .order_by("id")
            .values_list("id", flat=True)
        )
        if not ids:
            return []
        Delivery.objects.filter(_claimable(now), pk__in=ids).update(
            status=Status.SENDING,
            claim_token=token,
            lease_until=now + timedelta(seconds=settings.NEWSLETTER_LEASE_SECONDS),
            attempts=F("attempts") + 1,
        )
    return list(
        Delivery.objects.filter(claim_token=token).order_by("id").values_list("id", flat=True)
    )


def _mark(token: uuid.UUID, status: str, values: dict[int, tuple[str, str]], now: datetime) -> int:
    """Settle claimed rows in one UPDATE; `values` maps row id to (esp message id, error)."""
    if not values:
        return 0
    fields: dict = {"status": status, "claim_token": None, "lease_until": None}
    if status == Status.SENT:
        fields["sent_at"] = now
        fields["esp_message_id"] = Case(
            *[When(pk=pk, then=Value(mid)) for pk, (mid, _) in values.items()], default=Value("")
        )
    else:
        fields["last_error"] = Case(
            *[When(pk=pk, then=Value(err)) for pk, (_, err) in values.items()], default=Value("")
        )
    return Delivery.objects.filter(pk__in=list(values), claim_token=token).update(**fields)


def _variants(rows: list[Delivery], *, digest_variant, now: datetime) -> tuple[dict, dict]:
    """Split rows into {variant: [rows]} to send and {row id: reason} to skip."""
    to_send: dict[Variant, list[Delivery]] = defaultdict(list)
    skipped: dict[int, tuple[str, str]] = {}
    for row in rows:
        reader: Subscriber = row.subscriber
        if reader.status != Subscriber.Status.ACTIVE:
            skipped[row.pk] = ("", f"reader is {reader.status} at send time")
        elif reader.paused_until and reader.paused_until > now:
            skipped[row.pk] = ("", "reader paused at send time")
        else:
            variant = digest_variant(row)
            if variant:
                to_send[variant].append(row)
            else:
                skipped[row.pk] = ("", "none of the reader's sections is in this issue")
    return to_send, skipped


def delivery_batch_send(
    *, issue_id: int, first_id: int, last_id: int, now: datetime | None = None
) -> BatchResult:
    """Send the claimable rows of one range and record each outcome in the ledger."""
    now = now or timezone.now()
    token = uuid.uuid4()
    result = BatchResult()
    ids = deliveries_claim(
        issue_id=issue_id, first_id=first_id, last_id=last_id, token=token, now=now
    )
    result.claimed = len(ids)
    if not ids:
        result.retry_in = _live_lease_wait(
            issue_id=issue_id, first_id=first_id, last_id=last_id, now=now
        )
        issue_finish_if_done(issue_id=issue_id, now=now)
        return result

    issue = Issue.objects.select_related("newsletter").get(pk=issue_id)
    rows = list(
        Delivery.objects.filter(claim_token=token).select_related("subscriber").order_by("id")
    )
    chosen: dict[int, list[int]] = defaultdict(list)
    for subscriber_id, category_id in Subscriber.categories.through.objects.filter(
        subscriber_id__in=[row.subscriber_id for row in rows]
    ).values_list("subscriber_id", "category_id"):
        chosen[subscriber_id].append(category_id)

    digest = digest_build(issue)
    to_send, skipped = _variants(
        rows, digest_variant=lambda row: digest.variant_for(chosen[row.subscriber_id]), now=now
    )
    messages = []
    variant_of: dict[int, str] = {}
    for variant, variant_rows in to_send.items():
        rendered = digest_render(digest, variant)  # once per variant, not per reader
        for row in variant_rows:
            messages.append(
                (
                    row.pk,
                    digest_message(
                        rendered, issue=issue, subscriber=row.subscriber, delivery_id=row.pk
                    ),
                )
            )
            variant_of[row.pk] = ",".join(map(str, variant))

    attempts = max(row.attempts for row in rows)
    error: BaseException | None = None
    try:
        outcomes = send_per_message(messages)
    except BatchInterrupted as interrupted:
        outcomes, error = interrupted.outcomes, interrupted.error

    settled = {outcome.delivery_id for outcome in outcomes}
    unsent = [pk for pk, _ in messages if pk not in settled]
    with transaction.atomic():
        sent = _mark(
            token, Status.SENT, {o.delivery_id: (o.message_id, "") for o in outcomes if o.sent}, now
        )
        failed = _mark(
            token,
            Status.FAILED,
            {o.delivery_id: ("", o.error) for o in outcomes if not o.sent},
            now,
        )
        skipped_n = _mark(token, Status.SKIPPED, skipped, now)
        if unsent and error is not None:
            if attempts >= settings.NEWSLETTER_MAX_ATTEMPTS:
                reason = f"gave up after {attempts} attempts: {describe(error)}"
                failed += _mark(token, Status.FAILED, {pk: ("", reason) for pk in unsent}, now)
            else:
                result.requeued = Delivery.objects.filter(pk__in=unsent, claim_token=token).update(
                    status=Status.QUEUED,
                    claim_token=None,
                    lease_until=None,
                    last_error=describe(error),
                )
                result.retry_in = retry_delay(attempts, jitter=random.random())
        if variant_of:
            Delivery.objects.filter(pk__in=list(variant_of)).update(
                variant=Case(
                    *[When(pk=pk, then=Value(v)) for pk, v in variant_of.items()], default=Value("")
                )
            )
        Issue.objects.filter(pk=issue_id).update(
            sent_count=F("sent_count") + sent,
            failed_count=F("failed_count") + failed,
            skipped_count=F("skipped_count") + skipped_n,
        )
    result.sent, result.failed, result.skipped = sent, failed, skipped_n
    if result.retry_in is None:
        result.retry_in = _live_lease_wait(
            issue_id=issue_id, first_id=first_id, last_id=last_id, now=now
        )
    issue_finish_if_done(issue_id=issue_id, now=timezone.now())
    return result


def _live_lease_wait(*, issue_id: int, first_id: int, last_id: int, now: datetime) -> int | None:
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
    return max(1, int((lease - now).total_seconds()) + 1)


def issue_finish_if_done(*, issue_id: int, now: datetime) -> bool:
    """Mark the issue sent once no row is queued or sending; return True if it is done."""
    if Delivery.objects.filter(
        issue_id=issue_id, status__in=[Status.QUEUED, Status.SENDING]
    ).exists():
        return False
    Issue.objects.filter(pk=issue_id, status=Issue.Status.SENDING).update(
        status=Issue.Status.SENT, sent_at=now
    )
    return True
