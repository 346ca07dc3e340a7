"""Send one keyset range of an issue's Delivery rows: claim, re-check, render, send, mark.

Queries per batch are constant, whatever the batch size, the number of variants or
ESP calls: the dispatch record (1), claim (2), rows with their readers (1), their
chosen categories (1), the issue and its digest (a fixed handful), then one UPDATE
settles every row, one adds to the issue's counters, one closes or defers the
dispatch record and two see whether the issue is done. What was handed to the
backend between the claim and that UPDATE is noted in the send journal
(journal.py), so a crash in between re-sends at most the one call in flight. While
the batch works its lease is renewed (lease.py); what happens after a failure is
decided in retry.py.
"""

from __future__ import annotations

import hashlib
import random
import re
import uuid
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import get_connection
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from articles.languages import reader_language
from newsletter.digest import Digest, Variant, digest_build
from newsletter.digest import digest_render as _render
from newsletter.emails import RenderedEmail
from newsletter.links import PLACEHOLDERS, UNSUBSCRIBE_URL, ReaderLinks
from newsletter.models import Delivery, InterruptedCall, Issue, Subscriber
from newsletter.sending.dispatch import (
    claimable,
    dispatch_claimed,
    dispatch_deferred,
    dispatch_done,
)
from newsletter.sending.errors import SendPaused, is_ambiguous
from newsletter.sending.esp import batch_profile, send_esp_batches
from newsletter.sending.journal import journal_forget, journal_note, journal_recover
from newsletter.sending.lease import LeaseHeartbeat
from newsletter.sending.messages import BatchRecipient, digest_message
from newsletter.sending.ratelimit import (
    PAUSE_SLEEP_MAX,
    paused_for,
    rate_limit_eased,
    rate_limit_hit,
)
from newsletter.sending.retry import Action, decide, hop, paused_decision
from newsletter.sending.transport import (
    MSGID_TOKEN,
    TO_TOKEN,
    BatchInterrupted,
    MimeTemplate,
    Outcome,
    send_per_message,
    send_smtp_raw,
    uses_smtp,
)

Status = Delivery.Status


@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    requeued: int = 0
    recovered: int = 0  # rows a dead worker had sent, found in the journal
    variants: int = 0
    retry_in: int | None = None  # run this range again after so many seconds
    rate_limited: bool = False  # the retry waits out an ESP rate limit


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


def _claimed_rows(token: uuid.UUID, ids: list[int]) -> list[Row]:
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


# Rendered variants and their serialised MIME, kept per worker process across batches
# and keyed by a fingerprint of everything they show: a batch of the same issue
# reuses them, any change to the issue's content makes new ones.
_CACHE: OrderedDict[tuple, object] = OrderedDict()
_CACHE_SIZE = 128  # issue 14: twice the variants with two languages


_ISSUE_SHOWN = (
    "pk",
    "number",
    "title",
    "week",
    "window_start",
    "window_end",
    "editor_note",
    "utm_source",
    "utm_medium",
    "utm_campaign",
)


def _fingerprint(digest: Digest) -> str:
    issue, newsletter = digest.issue, digest.issue.newsletter
    data = (
        settings.SITE_URL,
        digest.language,  # issue 14: each edition's words are its own
        digest.text,
        # What the templates show of the issue (not its counters, which every batch moves).
        [getattr(issue, name) for name in _ISSUE_SHOWN],
        [getattr(newsletter, f.attname) for f in newsletter._meta.concrete_fields],
        [
            (
                section.key,
                section.title,
                [
                    (
                        item.article.pk,
                        item.article.title,
                        item.article.source,
                        item.article.published_at,
                        item.abstract,
                        item.url,
                        item.keywords,
                        item.related,
                        item.pinned,
                        item.original_language,
                    )
                    for item in section.items
                ],
            )
            for section in digest.sections
        ],
    )
    return hashlib.sha256(repr(data).encode()).hexdigest()


_WHITESPACE_RUN = re.compile(r"\s*\n\s*")
_HTML_LINE = 700  # bytes: leaves room under SMTP's 998 for the links put in per reader


def _compact(rendered: RenderedEmail) -> RenderedEmail:
    """Return the variant with its HTML on a few long lines instead of a few hundred.

    A line break and indentation in HTML render as one space, so this changes no
    pixel; every SMTP hop on the way (and the ESP) reads the message line by line.
    The text part keeps its lines. Lines are cut by their length in UTF-8 bytes, which
    is what SMTP counts: a Chinese character is three (issue 14). A line over 998
    bytes would make Django quoted-printable the part, splitting the per-reader
    tokens, and every copy of the variant would be built one by one.
    """
    flat = _WHITESPACE_RUN.sub(" ", rendered.html).encode()
    lines, start, carry = [], 0, b""
    while len(flat) - start > _HTML_LINE:
        # Cut at a space (ASCII, so never inside a multi-byte character).
        cut = flat.rfind(b" ", start, start + _HTML_LINE)
        if cut > start:
            lines.append(carry + flat[start:cut])
            start, carry = cut + 1, b""
            continue
        # A long run of Chinese has no space: cut between two characters, inside an
        # HTML comment, so the line break is no whitespace on the page.
        cut = _between_characters(flat, start, start + _HTML_LINE)
        if cut is None:
            break
        lines.append(carry + flat[start:cut] + b"<!--")
        start, carry = cut, b"-->"
    lines.append(carry + flat[start:])
    html = b"\n".join(lines).decode()
    return replace(rendered, html=html)  # subject, text and From name kept


def _between_characters(flat: bytes, start: int, end: int) -> int | None:
    """Return the last offset in (start, end] between two multi-byte characters of text.

    Not inside a tag (an attribute value), and never inside a character: the byte
    there starts a character and the byte before it ends a multi-byte one.
    """
    for cut in range(end, start, -1):
        if (
            0xC0 <= flat[cut] <= 0xF7
            and 0x80 <= flat[cut - 1] <= 0xBF
            and flat.rfind(b"<", 0, cut) < flat.rfind(b">", 0, cut)
        ):
            return cut
    return None


def _cached(key: tuple, make):
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    value = _CACHE[key] = make()
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return value


# Issue 14: a variant is (language, sections): readers of one edition who chose the
# same sections share one render. The label is what Delivery.variant records.
EditionVariant = tuple[str, Variant]


def _variant_label(key: EditionVariant) -> str:
    language, variant = key
    return f"{language}:{','.join(map(str, variant))}"


@dataclass
class _Plan:
    """What a claimed batch does with each row."""

    to_send: dict[EditionVariant, list[Row]]
    skipped: dict[int, str]  # row id -> reason
    recovered: dict[int, str]  # row id -> ESP message id


def _plan(rows: list[Row], *, digest: Digest, chosen, recovered, now: datetime) -> _Plan:
    to_send: dict[EditionVariant, list[Row]] = defaultdict(list)
    skipped: dict[int, str] = {}
    for row in rows:
        if row.pk in recovered:
            continue
        reader = row.subscriber
        if reader.status != Subscriber.Status.ACTIVE:
            skipped[row.pk] = f"reader is {reader.status} at send time"
        elif reader.paused_until and reader.paused_until > now:
            skipped[row.pk] = "reader paused at send time"
        else:
            edition = digest.edition(reader_language(reader.language))
            variant = edition.variant_for(chosen[reader.pk])
            if variant:
                to_send[(edition.language, variant)].append(row)
            else:
                skipped[row.pk] = "none of the reader's sections is in this issue"
    return _Plan(to_send=dict(to_send), skipped=skipped, recovered=recovered)


def _send(plan: _Plan, *, issue: Issue, digest: Digest, token: uuid.UUID) -> list[Outcome]:
    """Send every planned row, one render per variant; raise BatchInterrupted to stop."""
    fingerprints: dict[str, str] = {}

    def fingerprint(key: EditionVariant) -> str:
        language = key[0]
        if language not in fingerprints:
            fingerprints[language] = _fingerprint(digest.edition(language))
        return fingerprints[language]

    def rendered(key: EditionVariant) -> RenderedEmail:
        edition = digest.edition(key[0])
        return _cached((fingerprint(key), key), lambda: _compact(_render(edition, key[1])))

    connection = get_connection(fail_silently=False)
    links = ReaderLinks()
    profile = batch_profile(connection)
    if profile is not None:
        outcomes: list[Outcome] = []
        try:
            connection.open()
        except Exception as exc:
            raise BatchInterrupted([], exc) from exc
        try:
            for variant, rows in plan.to_send.items():
                recipients = []
                for r in rows:
                    tokens = links.tokens(r.subscriber)
                    prefix, suffix = links.around[UNSUBSCRIBE_URL]
                    recipients.append(
                        BatchRecipient(
                            r.pk, r.subscriber, tokens, prefix + tokens[UNSUBSCRIBE_URL] + suffix
                        )
                    )
                try:
                    outcomes += send_esp_batches(
                        connection,
                        profile,
                        rendered=rendered(variant),
                        issue=issue,
                        recipients=recipients,
                        token=token,
                        around=links.around,
                    )
                except BatchInterrupted as stop:
                    raise BatchInterrupted(outcomes + stop.outcomes, stop.error) from stop.error
        finally:
            connection.close()
        return outcomes

    if uses_smtp(connection):
        variants = []
        for variant, rows in plan.to_send.items():
            content = rendered(variant)
            readers = []
            for row in rows:
                personal = links(row.subscriber)
                readers.append(
                    (
                        row.pk,
                        row.subscriber.email,
                        personal,
                        _factory(content, issue, row, personal),
                    )
                )
            template = _cached(
                (fingerprint(variant), variant, "mime"),
                lambda c=content: _mime_template(c, issue=issue),
            )
            variants.append((template, readers))
        return send_smtp_raw(connection, variants, token=token)

    messages = []
    for variant, rows in plan.to_send.items():
        content = rendered(variant)  # once per variant, not per reader
        for row in rows:
            messages.append(
                (
                    row.pk,
                    digest_message(
                        content,
                        issue=issue,
                        subscriber=row.subscriber,
                        delivery_id=row.pk,
                        links=links(row.subscriber),
                    ),
                )
            )
    return send_per_message(messages, connection=connection, token=token)


def _factory(rendered: RenderedEmail, issue: Issue, row: Row, links: dict):
    return lambda: digest_message(
        rendered, issue=issue, subscriber=row.subscriber, delivery_id=row.pk, links=links
    )


def _mime_template(rendered: RenderedEmail, *, issue: Issue) -> MimeTemplate:
    """Serialise the variant once, tokens standing in for the reader's values."""
    probe = Subscriber(pk=0, newsletter=issue.newsletter, email=TO_TOKEN, token_secret="")
    identity = {p: p for p in PLACEHOLDERS}
    message = digest_message(rendered, issue=issue, subscriber=probe, delivery_id=0, links=identity)
    message.extra_headers["Message-ID"] = f"<{MSGID_TOKEN}>"
    in_source = sum(rendered.text.count(p) + rendered.html.count(p) for p in PLACEHOLDERS)
    return MimeTemplate(message, links_in_source=in_source + 1)  # + List-Unsubscribe


_SETTLE_CHUNK = 5000  # SQLite rows per UPDATE: 25,000 parameters, within its limit


def _settle(
    *,
    token: uuid.UUID,
    status: dict[int, str],
    message_ids: dict[int, str],
    errors: dict[int, str],
    variants: dict[int, str],
    now: datetime,
) -> None:
    """Write every claimed row's outcome and release the claim, in one UPDATE.

    Each row's own values come from arrays (PostgreSQL: UPDATE … FROM unnest(…)) or a
    VALUES list (SQLite): the ORM's CASE WHEN per row would cost more to compile than
    the sends it records. Table and column names come from model metadata; every
    value is a parameter.
    """
    table = connection.ops.quote_name(Delivery._meta.db_table)
    token_value = Delivery._meta.get_field("claim_token").get_db_prep_value(token, connection)
    now_value = Delivery._meta.get_field("sent_at").get_db_prep_value(now, connection)
    rows = [
        (pk, state, message_ids.get(pk), errors.get(pk), variants.get(pk))
        for pk, state in status.items()
    ]
    assignments = f"""
        status = v.status,
        esp_message_id = COALESCE(v.mid, {table}.esp_message_id),
        last_error = COALESCE(v.err, {table}.last_error),
        variant = COALESCE(v.variant, {table}.variant),
        sent_at = CASE WHEN v.status = %s THEN %s ELSE {table}.sent_at END,
        claim_token = NULL,
        lease_until = NULL
    """
    where = f"WHERE {table}.id = v.id AND {table}.claim_token = %s"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Five array parameters, however many rows: nothing to parse per row.
            columns = [list(column) for column in zip(*rows, strict=True)]
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM unnest(%s::bigint[], %s::text[],"  # noqa: S608
                f" %s::text[], %s::text[], %s::text[]) AS v (id, status, mid, err, variant) {where}",
                [Status.SENT, now_value, *columns, token_value],
            )
            return
        for start in range(0, len(rows), _SETTLE_CHUNK):
            chunk = rows[start : start + _SETTLE_CHUNK]
            values = ", ".join(["(CAST(%s AS bigint), %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(
                f"WITH v (id, status, mid, err, variant) AS (VALUES {values})"  # noqa: S608
                f" UPDATE {table} SET {assignments} FROM v {where}",
                [*(value for row in chunk for value in row), Status.SENT, now_value, token_value],
            )


def delivery_batch_send(
    *, issue_id: int, first_id: int, last_id: int, now: datetime | None = None
) -> BatchResult:
    """Send the claimable rows of one range and record each outcome in the ledger.

    Raises OperationalError or InterfaceError when the database goes away, after
    closing the broken connection and handing the claimed rows back, so that the
    task's retry takes them at once instead of waiting for the lease.
    """
    now = now or timezone.now()
    result = BatchResult()
    where = {"issue_id": issue_id, "first_id": first_id, "last_id": last_id}
    dispatch_claimed(**where, now=now)
    if _wait_out_pause(result, issue_id=issue_id, now=now):
        dispatch_deferred(**where, seconds=result.retry_in, now=now)
        return result
    token = uuid.uuid4()
    claimed = deliveries_claim(**where, token=token, now=now)
    result.claimed = len(claimed)
    if claimed:
        sent: dict[int, str] = {}  # rows accepted (row -> message id), before the ledger knows
        try:
            with LeaseHeartbeat(token):
                _send_claimed(result, claimed, issue_id=issue_id, token=token, now=now, sent=sent)
        except (OperationalError, InterfaceError):
            _release(token, sent=sent, now=now)
            raise
    if result.retry_in is None and len(claimed) < last_id - first_id + 1:
        # Rows of the range that this run did not claim may be held by another run.
        result.retry_in = _live_lease_wait(**where, now=now)
    if result.retry_in is None:
        dispatch_done(**where, now=now)
    else:
        dispatch_deferred(**where, seconds=result.retry_in, now=now)
    issue_finish_if_done(issue_id=issue_id, now=timezone.now())
    return result


def _wait_out_pause(result: BatchResult, *, issue_id: int, now: datetime) -> bool:
    """Return True (and the countdown in `result`) if every worker is paused by a 429.

    A range that comes back while the ESP's Retry-After still runs goes back to
    sleep for another hop without claiming a row or rendering anything.
    """
    seconds = paused_for()
    if seconds <= PAUSE_SLEEP_MAX:
        return False
    started = Issue.objects.filter(pk=issue_id).values_list("send_started_at", "resent_at").first()
    decision = paused_decision(
        seconds, started_at=_budget_start(*(started or (None, None))), now=now
    )
    if decision.action is not Action.WAIT:
        return False  # past the budget: claim the rows and fail them with the reason
    result.retry_in, result.rate_limited = decision.countdown, True
    return True


def _budget_start(send_started_at: datetime | None, resent_at: datetime | None) -> datetime | None:
    """Return when the give-up budget started: the send, or "Retry failed" since."""
    return max((t for t in (send_started_at, resent_at) if t), default=None)


def _release(token: uuid.UUID, *, sent: dict[int, str], now: datetime) -> None:
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


def _send_claimed(
    result: BatchResult,
    claimed: list[tuple[int, uuid.UUID | None]],
    *,
    issue_id: int,
    token: uuid.UUID,
    now: datetime,
    sent: dict[int, str],
) -> None:
    issue = Issue.objects.select_related("newsletter").get(pk=issue_id)
    rows = _claimed_rows(token, [pk for pk, _ in claimed])
    chosen: dict[int, list[int]] = defaultdict(list)
    for subscriber_id, category_id in Subscriber.categories.through.objects.filter(
        subscriber_id__in=[row.subscriber.pk for row in rows]
    ).values_list("subscriber_id", "category_id"):
        chosen[subscriber_id].append(category_id)
    digest = digest_build(issue)
    dead = [(pk, old) for pk, old in claimed if old]
    recovered = journal_recover(dead)
    plan = _plan(rows, digest=digest, chosen=chosen, recovered=recovered, now=now)
    result.variants = len(plan.to_send)
    interrupted: list[InterruptedCall] = _dead_calls(issue_id, dead, recovered, now=now)

    error: BaseException | None = None
    try:
        outcomes = _send(plan, issue=issue, digest=digest, token=token)
    except BatchInterrupted as stop:
        outcomes, error = stop.outcomes, stop.error
    except SendPaused as paused:  # every worker paused between two calls of this batch
        outcomes, error = [], paused

    status: dict[int, str] = {}
    message_ids: dict[int, str] = {}
    errors: dict[int, str] = {}
    variants: dict[int, str] = {}
    for variant, variant_rows in plan.to_send.items():
        label = _variant_label(variant)
        for row in variant_rows:
            variants[row.pk] = label
    for pk, mid in plan.recovered.items():
        status[pk], message_ids[pk] = Status.SENT, mid
    for outcome in outcomes:
        if outcome.sent:
            status[outcome.delivery_id] = Status.SENT
            message_ids[outcome.delivery_id] = outcome.message_id
        else:
            status[outcome.delivery_id] = Status.FAILED
            errors[outcome.delivery_id] = outcome.error
    unsent = [pk for pk in variants if pk not in status]
    if unsent and error is not None:
        # Calls the backend accepted before the interruption are in this claim's journal
        # even when the exception carried no outcome for them.
        for pk, mid in journal_recover((pk, token) for pk in unsent).items():
            status[pk], message_ids[pk] = Status.SENT, mid
        unsent = [pk for pk in unsent if pk not in status]
    sent.update(
        (pk, message_ids.get(pk, "")) for pk, state in status.items() if state == Status.SENT
    )
    for pk, reason in plan.skipped.items():
        status[pk], errors[pk] = Status.SKIPPED, reason
    refund: list[int] = []
    if unsent and error is not None:
        decision = decide(
            error,
            attempts=max(row.attempts for row in rows),
            started_at=_budget_start(issue.send_started_at, issue.resent_at),
            now=now,
            jitter=random.random(),
        )
        if decision.action is Action.GIVE_UP:
            for pk in unsent:
                status[pk], errors[pk] = Status.FAILED, decision.reason
        else:
            for pk in unsent:
                status[pk], errors[pk] = Status.QUEUED, decision.reason
            result.requeued, result.retry_in = len(unsent), decision.countdown
            if not decision.counts_attempt:
                refund, result.rate_limited = unsent, True
        if decision.wait is not None and not isinstance(error, SendPaused):
            rate_limit_hit(decision.wait)
        if is_ambiguous(error):
            interrupted.append(
                InterruptedCall(
                    issue_id=issue_id,
                    at=now,
                    recipients=_in_flight(plan, unsent),
                    error=decision.reason[:2000],
                )
            )

    counts = defaultdict(int)
    for value in status.values():
        counts[value] += 1
    with transaction.atomic():
        _settle(
            token=token,
            status=status,
            message_ids=message_ids,
            errors=errors,
            variants=variants,
            now=now,
        )
        Issue.objects.filter(pk=issue_id).update(
            sent_count=F("sent_count") + counts[Status.SENT],
            failed_count=F("failed_count") + counts[Status.FAILED],
            skipped_count=F("skipped_count") + counts[Status.SKIPPED],
            possible_duplicates=F("possible_duplicates")
            + sum(call.recipients for call in interrupted),
        )
        if refund:  # waiting out a rate limit is not a failed attempt
            Delivery.objects.filter(pk__in=refund).update(attempts=F("attempts") - 1)
        if interrupted:
            InterruptedCall.objects.bulk_create(interrupted)
    journal_forget(token, [pk for pk, s in status.items() if s == Status.SENT])
    if error is None and counts[Status.SENT]:
        rate_limit_eased()
    result.sent, result.failed = counts[Status.SENT], counts[Status.FAILED]
    result.skipped, result.recovered = counts[Status.SKIPPED], len(plan.recovered)


def _call_size() -> int:
    """Return the most recipients one call to the backend carries (1 per message)."""
    profile = batch_profile(get_connection(fail_silently=False))
    return profile.limit if profile is not None else 1


def _in_flight(plan: _Plan, unsent: list[int]) -> int:
    """Return the recipients of the call that was in flight when the batch stopped.

    Calls go out variant by variant in plan order, so it was the first call of the
    first variant with unsent rows.
    """
    left = set(unsent)
    for rows in plan.to_send.values():
        waiting = sum(1 for row in rows if row.pk in left)
        if waiting:
            return min(waiting, _call_size())
    return 0


def _dead_calls(
    issue_id: int,
    dead: list[tuple[int, uuid.UUID | None]],
    recovered: dict[int, str],
    *,
    now: datetime,
) -> list[InterruptedCall]:
    """Return an interrupted call for each dead claim that left rows not in its journal.

    A worker that died mid-batch may have been in the middle of one call: its
    recipients are sent again by this claim and may get a second copy.
    """
    unknown: dict = defaultdict(int)
    for pk, old in dead:
        if pk not in recovered:
            unknown[old] += 1
    if not unknown:
        return []
    size = _call_size()
    return [
        InterruptedCall(
            issue_id=issue_id,
            at=now,
            recipients=min(n, size),
            error=f"the worker holding claim {old} stopped mid-batch (its lease ran out)",
        )
        for old, n in unknown.items()
    ]


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
    return hop((lease - now).total_seconds() + 1)  # a countdown below the visibility timeout


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
