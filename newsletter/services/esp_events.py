"""ESP tracking events: storing what a webhook received, and reading what each one means.

The webhook request stores an event (`tracking_event_store`, one INSERT) and nothing
else. Reading it is the rest of this module: which action of the list-hygiene policy
an event calls for (`event_action`: an open, a click, a hard or soft bounce by the
ESP's own classification, a complaint, an unsubscribe, a failure, or a rejection
mirrored from the ESP's suppression list), and which Delivery and reader it is about
(`event_deliveries`, a whole batch in one query). What the policy then does is in
`newsletter.services.list_hygiene`.
"""

from __future__ import annotations

import hashlib
import json
import re
from contextlib import nullcontext
from functools import lru_cache
from typing import Any

from anymail.signals import AnymailTrackingEvent, EventType, RejectReason
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from newsletter.models import Delivery, Subscriber, TrackingEvent
from newsletter.suppression import normalise_email

HARD = TrackingEvent.BounceKind.HARD
SOFT = TrackingEvent.BounceKind.SOFT

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


_STORED_FIELDS = (
    "esp",
    "event_type",
    "esp_event_id",
    "message_id",
    "timestamp",
    "received_at",
    "reject_reason",
    "description",
    "mta_response",
    "click_url",
    "payload",
    "bounce_kind",
    "outcome",
)


@lru_cache(maxsize=2)
def _insert_sql(vendor: str) -> tuple[str, tuple]:
    """Return the INSERT that stores an event unless its key is known, and its fields."""
    meta = TrackingEvent._meta
    fields = tuple(meta.get_field(name) for name in _STORED_FIELDS)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    return (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) "  # noqa: S608 - names from the model
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({quote(meta.get_field('esp_event_id').column)}) DO NOTHING "
        f"RETURNING {quote(meta.pk.column)}",
        fields,
    )


def tracking_event_store(*, event: AnymailTrackingEvent, esp_name: str) -> TrackingEvent | None:
    """Store one normalised anymail event; return it, or None if the ESP sent it before.

    One statement in the request's autocommit: INSERT ... ON CONFLICT DO NOTHING
    RETURNING id, rather than a model save in a transaction of its own whose unique
    violation is caught (BEGIN, INSERT, COMMIT and the ORM's compiling were most of a
    webhook request's time). A retry of an event already stored inserts nothing.
    """
    esp = esp_name.lower()
    raw = _jsonable(event.esp_event)
    row = TrackingEvent(
        esp=esp[:30],
        event_type=(event.event_type or EventType.UNKNOWN)[:30],
        esp_event_id=_event_key(esp, event.event_id, raw),
        message_id=str(event.message_id or "")[:255],
        timestamp=event.timestamp,
        received_at=timezone.now(),
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
    sql, fields = _insert_sql(connection.vendor)
    values = [field.get_db_prep_save(getattr(row, field.attname), connection) for field in fields]
    # Inside a caller's transaction a savepoint keeps a failed INSERT from spoiling it;
    # the webhook request has none, and the statement commits on its own.
    with (
        transaction.atomic() if connection.in_atomic_block else nullcontext(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, values)
        inserted = cursor.fetchone()
    if inserted is None:
        return None  # the unique ESP event id: a retry of an event already stored
    row.pk = inserted[0]
    row._state.adding = False
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


def event_action(event: TrackingEvent) -> str | None:
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


def _metadata_ids(event: TrackingEvent) -> tuple[int | None, int | None, int | None]:
    metadata = event.payload.get("metadata") or {}
    return tuple(_int(metadata.get(key)) for key in ("delivery", "issue", "subscriber"))


_DELIVERY_FIELDS = (
    "issue_id",
    "subscriber_id",
    "status",
    "esp_message_id",
    "opened_at",
    "open_count",
    "clicked_at",
    "click_count",
)
_READER_FIELDS = ("email", "status", "soft_bounce_count", "newsletter_id")


def event_deliveries(events: list[TrackingEvent], *, lock: bool) -> dict[int, Delivery | None]:
    """Return the Delivery of each event (by event id), in one query for a whole batch.

    Every digest carries {"issue", "subscriber", "delivery"} as anymail metadata, so the
    delivery id finds the row through the primary key. The ESP message id is the
    fallback (events of other senders' mail, or metadata lost on the way), through its
    own index: it is ambiguous after an ESP batch call (Mailgun and SparkPost give all
    its recipients one id), so the metadata or the recipient narrows it. With `lock`,
    the rows are locked in id order, so that counters can be added to in memory and
    written back in bulk while no other applier changes them.
    """
    # Only what the policy reads for an open or click; list_hygiene loads the whole reader
    # for the few events that change them.
    rows = (
        Delivery.objects.select_related("subscriber")
        .only(*_DELIVERY_FIELDS, *(f"subscriber__{name}" for name in _READER_FIELDS))
        .order_by("pk")
    )
    if lock:
        rows = rows.select_for_update(of=("self",), no_key=True)
    ids = {event.pk: _metadata_ids(event) for event in events}
    wanted = {delivery_id for delivery_id, _, _ in ids.values() if delivery_id}
    known: dict[int, Delivery] = (
        {row.pk: row for row in rows.filter(pk__in=wanted)} if wanted else {}
    )
    found: dict[int, Delivery | None] = {}
    by_message: list[TrackingEvent] = []
    for event in events:
        delivery_id, issue_id, subscriber_id = ids[event.pk]
        delivery = known.get(delivery_id)
        if (
            delivery is not None
            and issue_id in (None, delivery.issue_id)
            and subscriber_id in (None, delivery.subscriber_id)
        ):
            found[event.pk] = delivery
        elif event.message_id:
            by_message.append(event)
        elif not delivery_id and issue_id and subscriber_id:
            # An older digest's metadata without the delivery id.
            found[event.pk] = rows.filter(issue_id=issue_id, subscriber_id=subscriber_id).first()
        else:
            found[event.pk] = None  # metadata that does not hang together is not ours
    if by_message:
        candidates: dict[str, list[Delivery]] = {}
        for row in rows.filter(esp_message_id__in={event.message_id for event in by_message}):
            candidates.setdefault(row.esp_message_id, []).append(known.setdefault(row.pk, row))
        for event in by_message:
            delivery_id, _, subscriber_id = ids[event.pk]
            matches = candidates.get(event.message_id, [])
            if len(matches) > 1:
                recipient = normalise_email(event.payload.get("recipient") or "")
                matches = [
                    row
                    for row in matches
                    if (
                        row.pk == delivery_id
                        if delivery_id
                        else row.subscriber_id == subscriber_id
                        if subscriber_id
                        else normalise_email(row.subscriber.email) == recipient
                    )
                ]
            if not matches and not delivery_id and subscriber_id and ids[event.pk][1]:
                matches = list(rows.filter(issue_id=ids[event.pk][1], subscriber_id=subscriber_id))
            found[event.pk] = matches[0] if matches else None
    return found


def tracking_event_delivery(*, event: TrackingEvent) -> Delivery | None:
    """Return the Delivery an event is about: by our metadata, then by ESP message id."""
    return event_deliveries([event], lock=False)[event.pk]


def event_subscriber(event: TrackingEvent, delivery: Delivery | None) -> Subscriber | None:
    if delivery is not None:
        return delivery.subscriber
    # Transactional mail (confirmation, re-permission) may carry only the reader's id;
    # a digest's metadata that found no delivery is not to be trusted for the reader.
    metadata = event.payload.get("metadata") or {}
    subscriber_id = _int(metadata.get("subscriber"))
    if subscriber_id is None or "delivery" in metadata:
        return None
    return Subscriber.objects.select_related("newsletter").filter(pk=subscriber_id).first()
