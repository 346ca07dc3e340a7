"""Ledger: every claimed row's outcome written in one UPDATE, the issue's counters, the end.

What the ways out reported, what the journal recovered and what the retry decision
said for the rows left unsent become one Settlement; `ledger_settle` writes it in
one transaction (one UPDATE of the rows, one of the issue's counters, the
interrupted calls), and the issue is marked sent once no row is queued or sending
(services/issues.py holds that change, with every other of an issue's status).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.db.models import F

from newsletter.models import Delivery, InterruptedCall, Issue
from newsletter.sending.journal import journal_forget
from newsletter.sending.retry import Action, Decision
from newsletter.sending.ways_out import Outcome, call_size

Status = Delivery.Status


@dataclass
class Settlement:
    """Each claimed row's new state, built up from the steps of the batch."""

    status: dict[int, str] = field(default_factory=dict)
    message_ids: dict[int, str] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    variants: dict[int, str] = field(default_factory=dict)  # row -> variant label
    refund: list[int] = field(default_factory=list)  # attempts given back (a rate limit)
    interrupted: list[InterruptedCall] = field(default_factory=list)

    def sent(self, rows: dict[int, str]) -> None:
        for pk, mid in rows.items():
            self.status[pk], self.message_ids[pk] = Status.SENT, mid

    def record(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            if outcome.sent:
                self.sent({outcome.delivery_id: outcome.message_id})
            else:
                self.status[outcome.delivery_id] = Status.FAILED
                self.errors[outcome.delivery_id] = outcome.error

    def skipped(self, reasons: dict[int, str]) -> None:
        for pk, reason in reasons.items():
            self.status[pk], self.errors[pk] = Status.SKIPPED, reason

    def unsent(self) -> list[int]:
        """Return the rows planned for sending that no step has settled yet."""
        return [pk for pk in self.variants if pk not in self.status]

    def apply(self, decision: Decision, unsent: list[int]) -> None:
        """Settle the unsent rows as the retry decision says: failed, or back in the queue."""
        if decision.action is Action.GIVE_UP:
            for pk in unsent:
                self.status[pk], self.errors[pk] = Status.FAILED, decision.reason
            return
        for pk in unsent:
            self.status[pk], self.errors[pk] = Status.QUEUED, decision.reason
        if not decision.counts_attempt:
            self.refund = unsent

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for value in self.status.values():
            counts[value] += 1
        return counts

    def sent_rows(self) -> dict[int, str]:
        return {
            pk: self.message_ids.get(pk, "")
            for pk, state in self.status.items()
            if state == Status.SENT
        }


def ledger_settle(
    settlement: Settlement, *, issue_id: int, token: uuid.UUID, now: datetime
) -> dict[str, int]:
    """Write the settlement and add it to the issue's counters; return the rows by status."""
    counts = settlement.counts()
    with transaction.atomic():
        _rows_update(settlement, token=token, now=now)
        Issue.objects.filter(pk=issue_id).update(
            sent_count=F("sent_count") + counts[Status.SENT],
            failed_count=F("failed_count") + counts[Status.FAILED],
            skipped_count=F("skipped_count") + counts[Status.SKIPPED],
            possible_duplicates=F("possible_duplicates")
            + sum(call.recipients for call in settlement.interrupted),
        )
        if settlement.refund:  # waiting out a rate limit is not a failed attempt
            Delivery.objects.filter(pk__in=settlement.refund).update(attempts=F("attempts") - 1)
        if settlement.interrupted:
            InterruptedCall.objects.bulk_create(settlement.interrupted)
    journal_forget(token, [pk for pk, s in settlement.status.items() if s == Status.SENT])
    return counts


_SETTLE_CHUNK = 5000  # SQLite rows per UPDATE: 25,000 parameters, within its limit


def _rows_update(settlement: Settlement, *, token: uuid.UUID, now: datetime) -> None:
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
        (
            pk,
            state,
            settlement.message_ids.get(pk),
            settlement.errors.get(pk),
            settlement.variants.get(pk),
        )
        for pk, state in settlement.status.items()
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


def in_flight_call(
    *, issue_id: int, to_send: dict, unsent: list[int], reason: str, now: datetime
) -> InterruptedCall:
    """Return the call that was in flight when the batch stopped, as a possible duplicate.

    Calls go out variant by variant in plan order, so it was the first call of the
    first variant with unsent rows.
    """
    left = set(unsent)
    recipients = 0
    for rows in to_send.values():
        waiting = sum(1 for row in rows if row.pk in left)
        if waiting:
            recipients = min(waiting, call_size())
            break
    return InterruptedCall(issue_id=issue_id, at=now, recipients=recipients, error=reason[:2000])


def dead_calls(
    *,
    issue_id: int,
    dead: list[tuple[int, uuid.UUID | None]],
    recovered: dict[int, str],
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
    size = call_size()
    return [
        InterruptedCall(
            issue_id=issue_id,
            at=now,
            recipients=min(n, size),
            error=f"the worker holding claim {old} stopped mid-batch (its lease ran out)",
        )
        for old, n in unknown.items()
    ]
