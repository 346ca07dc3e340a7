"""Send one keyset range of an issue's Delivery rows: the steps of the pipeline in order.

claim (claim.py) -> re-check and plan (render.py) -> render once per variant ->
send through the way out (ways_out/) -> settle (ledger.py), with retry.py deciding
what happens to rows a failure left unsent.

Queries per batch are constant, whatever the batch size, the number of variants or
ESP calls: the dispatch record (1), claim (2), rows with their readers (1), their
chosen categories (1), the issue and its digest (a fixed handful), then one UPDATE
settles every row, one adds to the issue's counters, one closes or defers the
dispatch record and two see whether the issue is done. What was handed to the
backend between the claim and that UPDATE is noted in the send journal
(journal.py), so a crash in between re-sends at most the one call in flight.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import InterfaceError, OperationalError
from django.utils import timezone

from newsletter.digest import Digest, digest_build
from newsletter.models import Delivery, Issue
from newsletter.sending.claim import (
    LeaseHeartbeat,
    chosen_categories,
    claim_release,
    claimed_rows,
    deliveries_claim,
    live_lease_wait,
)
from newsletter.sending.dispatch import dispatch_claimed, dispatch_deferred, dispatch_done
from newsletter.sending.errors import SendPaused, is_ambiguous
from newsletter.sending.journal import journal_recover
from newsletter.sending.ledger import Settlement, dead_calls, in_flight_call, ledger_settle
from newsletter.sending.ratelimit import (
    PAUSE_SLEEP_MAX,
    paused_for,
    rate_limit_eased,
    rate_limit_hit,
)
from newsletter.sending.render import Plan, Renders, variants_plan
from newsletter.sending.retry import Action, budget_start, decide, paused_decision
from newsletter.sending.ways_out import BatchInterrupted, Outcome, way_out
from newsletter.services.issues import issue_finish_if_done

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
            claim_release(token, sent=sent, now=now)
            raise
    if result.retry_in is None and len(claimed) < last_id - first_id + 1:
        # Rows of the range that this run did not claim may be held by another run.
        result.retry_in = live_lease_wait(**where, now=now)
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
        seconds, started_at=budget_start(*(started or (None, None))), now=now
    )
    if decision.action is not Action.WAIT:
        return False  # past the budget: claim the rows and fail them with the reason
    result.retry_in, result.rate_limited = decision.countdown, True
    return True


def _send_claimed(
    result: BatchResult,
    claimed: list[tuple[int, uuid.UUID | None]],
    *,
    issue_id: int,
    token: uuid.UUID,
    now: datetime,
    sent: dict[int, str],
) -> None:
    # Claim: the rows with their readers, and what a dead claim had already sent.
    issue = Issue.objects.select_related("newsletter").get(pk=issue_id)
    rows = claimed_rows(token, [pk for pk, _ in claimed])
    chosen = chosen_categories(rows)
    digest = digest_build(issue)
    dead = [(pk, old) for pk, old in claimed if old]
    recovered = journal_recover(dead)
    # Render: re-check each reader, pick their variant.
    plan = variants_plan(rows, digest=digest, chosen=chosen, recovered=recovered, now=now)
    result.variants = len(plan.to_send)
    settlement = Settlement(variants=plan.variants())
    settlement.interrupted = dead_calls(issue_id=issue_id, dead=dead, recovered=recovered, now=now)
    settlement.sent(plan.recovered)
    # The way out.
    outcomes, error = _send(plan, issue=issue, digest=digest, token=token)
    settlement.record(outcomes)
    unsent = settlement.unsent()
    if unsent and error is not None:
        # Calls the backend accepted before the interruption are in this claim's journal
        # even when the exception carried no outcome for them.
        settlement.sent(journal_recover((pk, token) for pk in unsent))
        unsent = settlement.unsent()
    sent.update(settlement.sent_rows())
    settlement.skipped(plan.skipped)
    # What becomes of the rows the failure left unsent: decided in retry.py.
    if unsent and error is not None:
        decision = decide(
            error,
            attempts=max(row.attempts for row in rows),
            started_at=budget_start(issue.send_started_at, issue.resent_at),
            now=now,
            jitter=random.random(),
        )
        settlement.apply(decision, unsent)
        if decision.action is not Action.GIVE_UP:
            result.requeued, result.retry_in = len(unsent), decision.countdown
            result.rate_limited = not decision.counts_attempt
        if decision.wait is not None and not isinstance(error, SendPaused):
            rate_limit_hit(decision.wait)
        if is_ambiguous(error):
            settlement.interrupted.append(
                in_flight_call(
                    issue_id=issue_id,
                    to_send=plan.to_send,
                    unsent=unsent,
                    reason=decision.reason,
                    now=now,
                )
            )
    # Ledger.
    counts = ledger_settle(settlement, issue_id=issue_id, token=token, now=now)
    if error is None and counts[Status.SENT]:
        rate_limit_eased()
    result.sent, result.failed = counts[Status.SENT], counts[Status.FAILED]
    result.skipped, result.recovered = counts[Status.SKIPPED], len(plan.recovered)


def _send(
    plan: Plan, *, issue: Issue, digest: Digest, token: uuid.UUID
) -> tuple[list[Outcome], BaseException | None]:
    """Send every planned row, one render per variant; return the outcomes and what stopped it."""
    if not plan.to_send:
        return [], None
    renders = Renders(digest)
    outcomes: list[Outcome] = []
    try:
        with way_out(issue=issue, token=token) as out:
            for key, rows in plan.to_send.items():
                outcomes += out.send(renders(key), rows)
    except BatchInterrupted as stop:
        return outcomes + stop.outcomes, stop.error
    except SendPaused as paused:  # every worker paused between two calls of this batch
        return outcomes, paused
    return outcomes, None
