"""List hygiene: what an ESP's tracking event does to the ledger and to the reader.

The webhook receiver only stores the event (`tracking_event_store`, one INSERT) and a
Celery task applies the policy (`tracking_event_process`):

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

import hashlib
import json
import re
from datetime import datetime
from typing import Any

from anymail.signals import AnymailTrackingEvent, EventType, RejectReason
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from newsletter.models import Delivery, Subscriber, TrackingEvent
from newsletter.services.subscribers import subscriber_unsubscribe, subscriber_withdraw
from newsletter.suppression import normalise_email, suppress

Outcome = TrackingEvent.Outcome
HARD = TrackingEvent.BounceKind.HARD
SOFT = TrackingEvent.BounceKind.SOFT

# ConsentRecord.method of the withdrawals this module writes; reports tell complaints
# from unsubscribes by it.
COMPLAINT_METHOD = "spam complaint"
ESP_UNSUBSCRIBE_METHOD = "{esp} unsubscribe"

# Actions the policy knows; each event maps to at most one.
OPEN, CLICK, HARD_BOUNCE, SOFT_BOUNCE, COMPLAINT, UNSUBSCRIBE, FAILED = (
    "open",
    "click",
    "hard",
    "soft",
    "complaint",
    "unsubscribe",
    "failed",
)
# Rejected by the ESP because of its own list: the reader is treated as the ESP says,
# but this message was never sent, so the delivery is failed rather than bounced.
MIRRORED = {
    RejectReason.BOUNCED: HARD_BOUNCE,
    RejectReason.INVALID: HARD_BOUNCE,
    RejectReason.TIMED_OUT: HARD_BOUNCE,
    RejectReason.SPAM: COMPLAINT,
    RejectReason.UNSUBSCRIBED: UNSUBSCRIBE,
}
# Events that change a Delivery's status wait until the batch that sent it has
# recorded the send, or the batch's own update would overwrite them.
STATUS_CHANGING = {HARD_BOUNCE, SOFT_BOUNCE, COMPLAINT, FAILED}


class DeliveryNotSettled(Exception):
    """The batch sending this delivery has not recorded it yet; process the event later."""


# --- storing (the webhook request) ----------------------------------------------------


def _jsonable(value: Any) -> Any:
    """Return `value` as plain JSON data (a POSTed QueryDict becomes a dict of values)."""
    if hasattr(value, "lists"):
        value = {key: items if len(items) > 1 else items[0] for key, items in value.lists()}
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, default=str))


def _event_key(esp: str, event_id: str | None, raw: Any) -> str:
    """Return the unique key of an event: the ESP's own id, or a hash of what it sent.

    ESPs retry a webhook until it succeeds, so the same event can come twice. Mailjet
    and most Postmark events carry no id; their retries repeat the same body, which
    the hash recognises. The ESP name keeps ids of different ESPs apart.
    """
    if event_id:
        return f"{esp}:{event_id}"[:255]
    digest = hashlib.sha256(
        json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    return f"{esp}:sha256:{digest}"


def tracking_event_store(*, event: AnymailTrackingEvent, esp_name: str) -> TrackingEvent | None:
    """Store one normalised anymail event; return it, or None if the ESP sent it before."""
    esp = esp_name.lower()
    raw = _jsonable(event.esp_event)
    row = TrackingEvent(
        esp=esp[:30],
        event_type=(event.event_type or EventType.UNKNOWN)[:30],
        esp_event_id=_event_key(esp, event.event_id, raw),
        message_id=str(event.message_id or "")[:255],
        timestamp=event.timestamp,
        reject_reason=(event.reject_reason or "")[:30],
        description=str(event.description or ""),
        mta_response=str(event.mta_response or ""),
        click_url=str(event.click_url or "")[:1000],
        payload={
            "metadata": _jsonable(event.metadata or {}),
            "recipient": event.recipient or "",
            "esp_event": raw,
        },
    )
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        return None  # the unique ESP event id: a retry of an event already stored
    return row


# --- classifying ------------------------------------------------------------------------

_ENHANCED_CODE = re.compile(r"\b([245])\.\d{1,3}\.\d{1,3}\b")
_BASIC_CODE = re.compile(r"^\s*([245])\d\d\b")
# SparkPost bounce classes that mean the address itself is bad; the rest (mailbox
# full, blocks, timeouts, ...) may clear up. https://support.sparkpost.com bounce classes
_SPARKPOST_HARD = {"10", "30", "90"}


def _smtp_class(text: str) -> str:
    """Return "5" (permanent), "4" (temporary) or "" from an SMTP reply."""
    match = _ENHANCED_CODE.search(text) or _BASIC_CODE.search(text)
    return match.group(1) if match else ""


def bounce_kind(*, esp: str, raw: Any, reject_reason: str, mta_response: str) -> str:
    """Return "hard" or "soft" for a bounce, from the ESP's own classification first.

    Anymail normalises bounce events but not their kind, and each ESP says it its own
    way; an SMTP code is the fallback, then anymail's reject reason.
    """
    raw = raw if isinstance(raw, dict) else {}
    if esp == "mailgun":
        data = raw.get("event-data") or {}
        if data.get("reason") in ("old", "espblock"):  # retries ran out; blocked by policy
            return SOFT
        status = data.get("delivery-status") or {}
        code = str(status.get("code") or "")
        if code[:1] in ("4", "5"):
            return SOFT if code[0] == "4" else HARD
    elif esp == "postmark":
        bounce_type = raw.get("Type")
        if bounce_type:
            return HARD if bounce_type in ("HardBounce", "BadEmailAddress") else SOFT
    elif esp == "sparkpost":
        bounce_class = str(raw.get("msys", {}).get("message_event", {}).get("bounce_class", ""))
        if bounce_class:
            return HARD if bounce_class in _SPARKPOST_HARD else SOFT
    elif esp == "sendgrid":
        if raw.get("type") in ("bounce", "blocked"):
            return HARD if raw["type"] == "bounce" else SOFT
    elif esp == "mailjet":
        if "hard_bounce" in raw:
            return HARD if raw["hard_bounce"] else SOFT
    elif esp in ("brevo", "sendinblue"):
        if raw.get("event") in ("hard_bounce", "soft_bounce"):
            return HARD if raw["event"] == "hard_bounce" else SOFT
    elif esp == "mailersend":
        if str(raw.get("type", "")).endswith("soft_bounced"):
            return SOFT
    elif esp == "amazon_ses":
        bounce = raw.get("bounce") or {}
        if bounce.get("bounceType"):
            return HARD if bounce["bounceType"] == "Permanent" else SOFT
    smtp = _smtp_class(mta_response)
    if smtp:
        return HARD if smtp == "5" else SOFT
    return HARD if reject_reason in (RejectReason.BOUNCED, RejectReason.INVALID) else SOFT


def _action(event: TrackingEvent) -> str | None:
    """Return what the policy does for this event, or None to only record it."""
    kind = event.event_type
    raw = event.payload.get("esp_event")
    if event.esp == "mailgun" and isinstance(raw, dict):
        # Mailgun reports sends it dropped for its own suppression lists as "failed".
        reason = (raw.get("event-data") or {}).get("reason")
        mirrored = {
            "suppress-bounce": HARD_BOUNCE,
            "suppress-complaint": COMPLAINT,
            "suppress-unsubscribe": UNSUBSCRIBE,
        }.get(reason)
        if mirrored:
            return f"mirror:{mirrored}"
    if kind == EventType.OPENED:
        return OPEN
    if kind == EventType.CLICKED:
        return CLICK
    if kind == EventType.BOUNCED:
        return bounce_kind(
            esp=event.esp,
            raw=raw,
            reject_reason=event.reject_reason,
            mta_response=event.mta_response,
        )
    if kind == EventType.COMPLAINED:
        return COMPLAINT
    if kind == EventType.UNSUBSCRIBED:
        return UNSUBSCRIBE
    if kind == EventType.REJECTED:
        mirrored = MIRRORED.get(event.reject_reason)
        return f"mirror:{mirrored}" if mirrored else FAILED
    if kind == EventType.FAILED:
        return FAILED
    return None


# --- mapping to the ledger ------------------------------------------------------------------


def _int(value: Any) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def tracking_event_delivery(*, event: TrackingEvent) -> Delivery | None:
    """Return the Delivery an event is about: by ESP message id, then by our metadata.

    Every digest carries {"issue", "subscriber", "delivery"} as anymail metadata. The
    message id alone is ambiguous after an ESP batch call (Mailgun and SparkPost give
    all its recipients one id), and it is not recorded yet for events that arrive
    while the batch is still sending; the metadata settles both.
    """
    metadata = event.payload.get("metadata") or {}
    delivery_id, issue_id, subscriber_id = (
        _int(metadata.get(key)) for key in ("delivery", "issue", "subscriber")
    )
    rows = Delivery.objects.select_related("subscriber__newsletter")
    if event.message_id:
        by_message = rows.filter(esp_message_id=event.message_id)
        found = list(by_message[:2])
        if len(found) == 1:
            return found[0]
        if found:
            recipient = event.payload.get("recipient") or ""
            narrowed = (
                by_message.filter(pk=delivery_id)
                if delivery_id
                else by_message.filter(subscriber_id=subscriber_id)
                if subscriber_id
                else by_message.filter(subscriber__email__iexact=recipient)
            )
            return narrowed.first()
    if delivery_id:
        delivery = rows.filter(pk=delivery_id).first()
        if delivery is None:
            return None
        if issue_id not in (None, delivery.issue_id) or subscriber_id not in (
            None,
            delivery.subscriber_id,
        ):
            return None  # metadata that does not hang together is not ours to act on
        return delivery
    if issue_id and subscriber_id:
        return rows.filter(issue_id=issue_id, subscriber_id=subscriber_id).first()
    return None


def _subscriber_for(event: TrackingEvent, delivery: Delivery | None) -> Subscriber | None:
    if delivery is not None:
        return delivery.subscriber
    # Transactional mail (confirmation, re-permission) may carry only the reader's id;
    # a digest's metadata that found no delivery is not to be trusted for the reader.
    metadata = event.payload.get("metadata") or {}
    subscriber_id = _int(metadata.get("subscriber"))
    if subscriber_id is None or "delivery" in metadata:
        return None
    return Subscriber.objects.select_related("newsletter").filter(pk=subscriber_id).first()


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


def _update_delivery(delivery: Delivery, action: str, event: TrackingEvent, when: datetime) -> None:
    rows = Delivery.objects.filter(pk=delivery.pk)
    first = Least(Coalesce(F("opened_at"), Value(when)), Value(when))
    reason = (event.description or event.mta_response or event.event_type)[:2000]
    if action == OPEN:
        rows.update(open_count=F("open_count") + 1, opened_at=first)
    elif action == CLICK:
        rows.update(
            click_count=F("click_count") + 1,
            clicked_at=Least(Coalesce(F("clicked_at"), Value(when)), Value(when)),
            opened_at=first,
        )
    elif action in (HARD_BOUNCE, SOFT_BOUNCE):
        rows.filter(status=Delivery.Status.SENT).update(
            status=Delivery.Status.BOUNCED, last_error=f"{action} bounce: {reason}"[:2000]
        )
    elif action == COMPLAINT:
        rows.filter(status__in=[Delivery.Status.SENT, Delivery.Status.BOUNCED]).update(
            status=Delivery.Status.COMPLAINED
        )
    elif action == FAILED or action.startswith("mirror:"):
        rows.filter(status=Delivery.Status.SENT).update(
            status=Delivery.Status.FAILED, last_error=f"rejected by the ESP: {reason}"[:2000]
        )


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


def tracking_event_process(
    *, event_id: int, now: datetime | None = None, wait_for_send: bool = True
) -> TrackingEvent | None:
    """Apply the policy to one stored event, once; return it, or None if already done.

    Raises DeliveryNotSettled (nothing changed) when the event would change a delivery
    that its batch has not recorded as sent yet and `wait_for_send` is true.
    """
    now = now or timezone.now()
    with transaction.atomic():
        event = (
            TrackingEvent.objects.select_for_update()
            .filter(pk=event_id, processed_at__isnull=True)
            .first()
        )
        if event is None:
            return None
        action = _action(event)
        delivery = tracking_event_delivery(event=event)
        if (
            wait_for_send
            and delivery is not None
            and delivery.status in (Delivery.Status.QUEUED, Delivery.Status.SENDING)
            and (action in STATUS_CHANGING or (action or "").startswith("mirror:"))
        ):
            raise DeliveryNotSettled(f"delivery {delivery.pk} is still {delivery.status}")
        subscriber = _subscriber_for(event, delivery)
        when = event.timestamp or event.received_at or now
        if action in (HARD_BOUNCE, SOFT_BOUNCE):
            event.bounce_kind = action
        if delivery is not None and action is not None:
            _update_delivery(delivery, action, event, when)
        if subscriber is None:
            event.outcome = Outcome.UNMATCHED
        elif subscriber.status == Subscriber.Status.ERASED:
            event.outcome = Outcome.ERASED
            _forget(event)
        elif action is not None:
            reader_action = action.removeprefix("mirror:")
            event.outcome = _apply_to_reader(subscriber, reader_action, event, delivery, now)
        event.delivery = delivery
        event.processed_at = now
        event.save()
    return event


def tracking_events_unprocessed(*, older_than: datetime, limit: int) -> list[int]:
    """Return ids of events still waiting for their task (lost, or the broker was down)."""
    return list(
        TrackingEvent.objects.filter(processed_at__isnull=True, received_at__lt=older_than)
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )


def tracking_events_forget(*, subscriber: Subscriber) -> int:
    """Drop what tracking events keep about a reader (call it when erasing them)."""
    return TrackingEvent.objects.filter(
        Q(delivery__subscriber=subscriber) | Q(payload__metadata__subscriber=str(subscriber.pk))
    ).update(payload={}, description="", mta_response="", click_url="")
