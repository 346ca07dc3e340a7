"""List hygiene: what an ESP's tracking event does to the ledger and to the reader.

The webhook stores the event and `newsletter.services.esp_events` says what it means;
a Celery task applies the policy here, a few hundred events at a time
(`tracking_events_apply`):

- opened, clicked: first time and count on the Delivery. A click also counts as an
  open, because many readers block the images that report opens.
- bounced, hard: the delivery is bounced; the reader is bounced and suppressed.
- bounced, soft: the delivery is bounced; the reader is bounced and suppressed once
  their last NEWSLETTER_SOFT_BOUNCE_LIMIT issues all soft-bounced.
- complained: the delivery is complained; the reader complained (consent withdrawn)
  and is suppressed at once.
- unsubscribed: the reader is unsubscribed (consent withdrawn), as by our own link.
- rejected by the ESP for an earlier bounce, complaint or unsubscribe: the delivery
  failed and the reader gets the same treatment, mirrored from the ESP's list.
- failed (the ESP could not send it): the delivery failed.
- delivered, deferred, queued, resubscribed, ...: recorded only. A resubscription
  reported by the ESP does not put a reader back: that takes our own double opt-in.

An event for an erased reader changes nothing about them and keeps nothing that could
identify them. A bounce for an address the reader has since changed suppresses that
old address but leaves the reader alone.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime

from anymail.signals import EventType
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from newsletter.bulk_sql import rows_update
from newsletter.models import Delivery, Subscriber, TrackingEvent
from newsletter.services.esp_events import (
    CLICK,
    COMPLAINT,
    HARD_BOUNCE,
    OPEN,
    SOFT_BOUNCE,
    STATUS_CHANGING,
    UNSUBSCRIBE,
    event_action,
    event_deliveries,
    event_subscriber,
)
from newsletter.services.tallies import (
    DELIVERED,
    TallyDelta,
    issue_tallies_add,
    link_key,
    newsroom_week,
    weekly_tallies_add,
)
from newsletter.services.withdrawals import subscriber_unsubscribe, subscriber_withdraw
from newsletter.suppression import normalise_email, suppress

Outcome = TrackingEvent.Outcome

# ConsentRecord.method of the withdrawals this module writes; reports tell complaints
# from unsubscribes by it.
COMPLAINT_METHOD = "spam complaint"
ESP_UNSUBSCRIBE_METHOD = "{esp} unsubscribe"


class DeliveryNotSettled(Exception):
    """The batch sending this delivery has not recorded it yet; process the event later."""


# --- the policy ------------------------------------------------------------------------------


def soft_bounce_streak(*, subscriber: Subscriber, through: Delivery | None = None) -> int:
    """Return how many issues in a row bounced for the reader, up to the latest one.

    With `through`, count the run of bounced issues that contains that delivery
    instead: its bounce may arrive after the next issue went out. Derived from the
    ledger, so that events arriving late or twice count once, and an issue that went
    through breaks the run.
    """
    rows = list(
        Delivery.objects.filter(
            subscriber=subscriber,
            status__in=[Delivery.Status.SENT, Delivery.Status.BOUNCED, Delivery.Status.COMPLAINED],
        )
        .order_by("-issue_id")
        .values_list("pk", "status")[:200]
    )
    statuses = [status for _, status in rows]
    start = 0
    if through is not None:
        ids = [pk for pk, _ in rows]
        if through.pk not in ids:
            return 0
        start = ids.index(through.pk)
        while start > 0 and statuses[start - 1] == Delivery.Status.BOUNCED:
            start -= 1
    streak = 0
    for status in statuses[start:]:
        if status != Delivery.Status.BOUNCED:
            break
        streak += 1
    return streak


class _Batch:
    """What a batch of events does to the ledger, gathered in memory and written in bulk.

    Opens and clicks (nearly every event) only add to counters: they are added to the
    locked Delivery rows in memory and written back in one UPDATE, and what they add
    to each issue's tally is summed. Events that change a delivery's status (bounces,
    complaints, failures; a few in a thousand) are written at once, each by a
    conditional UPDATE, so that a batch that settles the same row in between is seen.
    """

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.engaged: dict[int, Delivery] = {}
        self.deltas: dict[int, TallyDelta] = {}
        self.clicked: set[tuple[int, str]] = set()
        # Readers [bounced, complained] per (newsletter id, week), for list health.
        self.weekly: dict[tuple[int, date], list[int]] = defaultdict(lambda: [0, 0])

    def delta(self, delivery: Delivery) -> TallyDelta:
        return self.deltas.setdefault(delivery.issue_id, TallyDelta())

    def seen_clicks(self, events: list[TrackingEvent], deliveries: dict) -> None:
        """Remember which links these readers clicked before, to count each reader once."""
        ids = {
            deliveries[event.pk].pk
            for event in events
            if deliveries.get(event.pk) is not None and event.click_url
        }
        if ids:
            self.clicked = {
                (delivery_id, link_key(url))
                for delivery_id, url in TrackingEvent.objects.filter(
                    delivery_id__in=ids, event_type=EventType.CLICKED, processed_at__isnull=False
                )
                .exclude(click_url="")
                .values_list("delivery_id", "click_url")
            }

    def engage(self, delivery: Delivery, action: str, event: TrackingEvent, when: datetime) -> None:
        delta = self.delta(delivery)
        counted = delivery.status in DELIVERED
        hour = delta.hourly[when.astimezone(UTC).strftime("%Y-%m-%dT%H")]
        if delivery.opened_at is None:
            delta.opened += counted
            hour[0] += 1
        delivery.opened_at = min(delivery.opened_at or when, when)
        if action == OPEN:
            delivery.open_count += 1
            delta.opens += 1
        else:
            if delivery.clicked_at is None:
                delta.clicked += counted
                hour[1] += 1
            delivery.clicked_at = min(delivery.clicked_at or when, when)
            delivery.click_count += 1
            delta.clicks += 1
            if event.click_url:
                key = link_key(event.click_url)
                link = delta.links[key]
                link[0] += 1
                if (delivery.pk, key) not in self.clicked:
                    self.clicked.add((delivery.pk, key))
                    link[1] += 1
        self.engaged[delivery.pk] = delivery

    def settle(self, delivery: Delivery, action: str, event: TrackingEvent) -> None:
        """Change the delivery's status for a bounce, complaint or failure, if it still fits.

        A rejection mirrored from the ESP's own list ("mirror:...") was never sent: failed.
        """
        rows = Delivery.objects.filter(pk=delivery.pk)
        reason = (event.description or event.mta_response or event.event_type)[:2000]
        before = delivery.status
        if action in (HARD_BOUNCE, SOFT_BOUNCE):
            after, allowed = Delivery.Status.BOUNCED, [Delivery.Status.SENT]
            changes = {"last_error": f"{action} bounce: {reason}"[:2000]}
        elif action == COMPLAINT:
            after, allowed = (
                Delivery.Status.COMPLAINED,
                [Delivery.Status.SENT, Delivery.Status.BOUNCED],
            )
            changes = {}
        else:
            after, allowed = Delivery.Status.FAILED, [Delivery.Status.SENT]
            changes = {"last_error": f"rejected by the ESP: {reason}"[:2000]}
        delta = self.delta(delivery)
        if after == Delivery.Status.COMPLAINED and event.event_type == EventType.COMPLAINED:
            delta.complaints += before != Delivery.Status.COMPLAINED
        if not rows.filter(status__in=allowed).update(status=after, **changes):
            return
        delivery.status = after
        if action in (HARD_BOUNCE, SOFT_BOUNCE):
            delta.bounced += 1
            setattr(delta, f"{action}_bounces", getattr(delta, f"{action}_bounces") + 1)
        elif before == Delivery.Status.BOUNCED:
            delta.bounced -= 1
        if after == Delivery.Status.COMPLAINED:
            delta.complained += 1
        was, now_in = before in DELIVERED, after in DELIVERED
        if was != now_in:
            sign = 1 if now_in else -1
            delta.delivered += sign
            delta.opened += sign * (delivery.opened_at is not None)
            delta.clicked += sign * (delivery.clicked_at is not None)

    def write(self) -> None:
        if self.engaged:
            rows_update(
                Delivery,
                list(self.engaged.values()),
                ["open_count", "opened_at", "click_count", "clicked_at"],
            )
        issue_tallies_add(deltas=self.deltas)
        weekly_tallies_add(counts=self.weekly)

    def lost(self, subscriber: Subscriber, event: TrackingEvent) -> None:
        """Count a reader this event bounced or took a complaint from, in its week."""
        column = {Outcome.BOUNCED: 0, Outcome.COMPLAINED: 1}.get(event.outcome)
        if column is not None:
            when = event.received_at or self.now
            self.weekly[(subscriber.newsletter_id, newsroom_week(when))][column] += 1


def _reader_suppress(subscriber: Subscriber, address: str, reason: str, enabled: bool) -> None:
    if enabled and address:
        suppress(newsletter=subscriber.newsletter, email=address, reason=reason)


def _reader_bounced(subscriber: Subscriber, address: str, now: datetime) -> bool:
    changed = Subscriber.objects.filter(
        pk=subscriber.pk, status__in=[Subscriber.Status.ACTIVE, Subscriber.Status.PENDING]
    ).update(status=Subscriber.Status.BOUNCED, updated_at=now)
    _reader_suppress(subscriber, address, "bounced", settings.NEWSLETTER_SUPPRESS_BOUNCED)
    return bool(changed)


def _reader_complained(subscriber: Subscriber, address: str, esp: str, now: datetime) -> bool:
    had_consent = subscriber_withdraw(
        subscriber=subscriber,
        status=Subscriber.Status.COMPLAINED,
        method=COMPLAINT_METHOD,
        note=f"Marked the newsletter as spam (reported by {esp}).",
        now=now,
    )
    other = Subscriber.objects.filter(
        pk=subscriber.pk, status__in=[Subscriber.Status.UNSUBSCRIBED, Subscriber.Status.BOUNCED]
    ).update(status=Subscriber.Status.COMPLAINED, updated_at=now)
    _reader_suppress(subscriber, address, "complained", settings.NEWSLETTER_SUPPRESS_COMPLAINED)
    return bool(had_consent or other)


def _apply_to_reader(
    subscriber: Subscriber,
    action: str,
    event: TrackingEvent,
    delivery: Delivery | None,
    now: datetime,
) -> str:
    """Apply the reader's side of the policy and return the event's outcome."""
    recipient = normalise_email(event.payload.get("recipient") or "")
    current = normalise_email(subscriber.email)
    address = recipient or current
    if recipient and recipient != current:
        # The reader has changed address since: the old one goes, the reader stays.
        if action == HARD_BOUNCE:
            _reader_suppress(subscriber, recipient, "bounced", settings.NEWSLETTER_SUPPRESS_BOUNCED)
        return ""
    if action in (OPEN, CLICK) or event.event_type == EventType.DELIVERED:
        if subscriber.soft_bounce_count:
            Subscriber.objects.filter(pk=subscriber.pk).update(
                soft_bounce_count=soft_bounce_streak(subscriber=subscriber)
            )
        return ""
    if action == HARD_BOUNCE:
        return Outcome.BOUNCED if _reader_bounced(subscriber, address, now) else ""
    if action == SOFT_BOUNCE:
        streak = soft_bounce_streak(subscriber=subscriber, through=delivery)
        Subscriber.objects.filter(pk=subscriber.pk).update(soft_bounce_count=streak)
        limit = settings.NEWSLETTER_SOFT_BOUNCE_LIMIT
        if limit and streak >= limit:
            return Outcome.BOUNCED if _reader_bounced(subscriber, address, now) else ""
        return Outcome.SOFT_BOUNCE
    if action == COMPLAINT:
        return Outcome.COMPLAINED if _reader_complained(subscriber, address, event.esp, now) else ""
    if action == UNSUBSCRIBE:
        changed = subscriber_unsubscribe(
            subscriber=subscriber, method=ESP_UNSUBSCRIBE_METHOD.format(esp=event.esp)[:50]
        )
        return Outcome.UNSUBSCRIBED if changed else ""
    return ""


def _forget(event: TrackingEvent) -> None:
    """Drop everything in the event that could identify a reader."""
    event.payload = {}
    event.description = event.mta_response = event.click_url = ""


def _apply(
    batch: _Batch, event: TrackingEvent, action: str | None, delivery: Delivery | None
) -> None:
    """Apply the policy to one event: the ledger through `batch`, the reader at once."""
    subscriber = event_subscriber(event, delivery)
    if subscriber is not None and action not in (OPEN, CLICK, None) and delivery is not None:
        # This event may change the reader: work on all of them, not the few fields read.
        subscriber = Subscriber.objects.select_related("newsletter").get(pk=subscriber.pk)
        delivery.subscriber = subscriber
    when = event.timestamp or event.received_at or batch.now
    if action in (HARD_BOUNCE, SOFT_BOUNCE):
        event.bounce_kind = action
    if delivery is not None and action in (OPEN, CLICK):
        batch.engage(delivery, action, event, when)
    elif delivery is not None and action is not None and action != UNSUBSCRIBE:
        batch.settle(delivery, action, event)
    if subscriber is None:
        event.outcome = Outcome.UNMATCHED
    elif subscriber.status == Subscriber.Status.ERASED:
        event.outcome = Outcome.ERASED
        _forget(event)
    elif action is not None:
        reader_action = action.removeprefix("mirror:")
        event.outcome = _apply_to_reader(subscriber, reader_action, event, delivery, batch.now)
        batch.lost(subscriber, event)
    event.delivery = delivery
    event.processed_at = batch.now


def _must_wait(event: TrackingEvent, action: str | None, delivery: Delivery | None) -> bool:
    """Whether the event would change a delivery that its batch has not recorded yet."""
    return (
        delivery is not None
        and delivery.status in (Delivery.Status.QUEUED, Delivery.Status.SENDING)
        and (action in STATUS_CHANGING or (action or "").startswith("mirror:"))
    )


def tracking_event_process(
    *, event_id: int, now: datetime | None = None, wait_for_send: bool = True
) -> TrackingEvent | None:
    """Apply the policy to one stored event, once; return it, or None if already done.

    Raises DeliveryNotSettled (nothing changed) when the event would change a delivery
    that its batch has not recorded as sent yet and `wait_for_send` is true.
    """
    batch = _Batch(now or timezone.now())
    with transaction.atomic():
        event = (
            TrackingEvent.objects.select_for_update()
            .filter(pk=event_id, processed_at__isnull=True)
            .first()
        )
        if event is None:
            return None
        action = event_action(event)
        delivery = event_deliveries([event], lock=True)[event.pk]
        if wait_for_send and _must_wait(event, action, delivery):
            raise DeliveryNotSettled(f"delivery {delivery.pk} is still {delivery.status}")
        batch.seen_clicks([event], {event.pk: delivery})
        _apply(batch, event, action, delivery)
        batch.write()
        event.save()
    return event


@dataclass
class AppliedEvents:
    """What one call of `tracking_events_apply` did."""

    applied: int = 0
    waiting: int = 0  # status changes for deliveries whose batch is still sending
    last_id: int = 0  # the highest event id looked at, to go on after it

    @property
    def seen(self) -> int:
        return self.applied + self.waiting


# Each event's changed columns; an erased reader's event also loses what identified them.
_EVENT_FIELDS = ["delivery", "processed_at", "outcome", "bounce_kind"]
_FORGOTTEN_FIELDS = ["payload", "description", "mta_response", "click_url"]


def tracking_events_apply(
    *,
    limit: int = 500,
    after_id: int = 0,
    older_than: datetime | None = None,
    wait_before: datetime | None = None,
    now: datetime | None = None,
) -> AppliedEvents:
    """Apply the policy to up to `limit` unprocessed events, in bulk; return what it did.

    Events are taken in id order after `after_id`, skipping those another applier holds
    (`SKIP LOCKED`), so several workers share a backlog. Their deliveries are found in
    one query and their counters written in one UPDATE; each issue's tally gets the
    batch's sum. An event that would change a delivery its batch is still sending is
    left for later, unless it arrived before `wait_before` (its batch's lease is long
    over by then: waiting any longer would never end).
    """
    batch = _Batch(now or timezone.now())
    result = AppliedEvents(last_id=after_id)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Each batch's COMMIT waited for its WAL flush. Unflushed, a crash of the
            # database loses the last batches whole (never part of one), so their
            # events are still unprocessed and applied again: nothing is lost.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        pending = TrackingEvent.objects.filter(processed_at__isnull=True, pk__gt=after_id)
        if older_than is not None:
            pending = pending.filter(received_at__lt=older_than)
        events = list(
            pending.select_for_update(skip_locked=True, of=("self",)).order_by("pk")[:limit]
        )
        if not events:
            return result
        result.last_id = events[-1].pk
        deliveries = event_deliveries(events, lock=True)
        batch.seen_clicks(events, deliveries)
        applied, forgotten = [], False
        for event in events:
            action, delivery = event_action(event), deliveries[event.pk]
            if _must_wait(event, action, delivery) and (
                wait_before is None or event.received_at >= wait_before
            ):
                result.waiting += 1
                continue
            _apply(batch, event, action, delivery)
            forgotten = forgotten or event.outcome == Outcome.ERASED
            applied.append(event)
        batch.write()
        if applied:
            fields = _EVENT_FIELDS + (_FORGOTTEN_FIELDS if forgotten else [])
            rows_update(TrackingEvent, applied, fields)
        result.applied = len(applied)
    return result


# A status change waits for the batch that sends its delivery, but not for ever: by this
# age the batch's lease has long run out (the per-event task used to try 30 times a
# minute apart).
WAIT_FOR_SEND_AT_MOST = 30 * 60


def tracking_events_drain(
    *,
    seconds: float = 50.0,
    limit: int = 500,
    older_than: datetime | None = None,
    now: datetime | None = None,
) -> AppliedEvents:
    """Apply batches of events until none are left or `seconds` have passed; sum them up.

    Returns with `last_id` 0 when everything was looked at, else the id to go on after.
    """
    started = time.monotonic()
    total = AppliedEvents()
    while True:
        moment = now or timezone.now()
        wait_before = moment - timezone.timedelta(seconds=WAIT_FOR_SEND_AT_MOST)
        done = tracking_events_apply(
            limit=limit,
            after_id=total.last_id,
            older_than=older_than,
            wait_before=wait_before,
            now=moment,
        )
        total.applied += done.applied
        total.waiting += done.waiting
        if done.seen < limit:
            total.last_id = 0
            return total
        total.last_id = done.last_id
        if time.monotonic() - started > seconds:
            return total


def tracking_events_backlog() -> int:
    """Return how many stored events are still waiting to be applied."""
    return TrackingEvent.objects.filter(processed_at__isnull=True).count()


def tracking_events_forget(*, subscriber: Subscriber) -> int:
    """Drop what tracking events keep about a reader (call it when erasing them)."""
    return TrackingEvent.objects.filter(
        Q(delivery__subscriber=subscriber) | Q(payload__metadata__subscriber=str(subscriber.pk))
    ).update(payload={}, description="", mta_response="", click_url="")
