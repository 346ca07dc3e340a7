"""The one place that decides whether, when and how a failed send is tried again.

Every failure that stops a batch part-way comes here with the rows' attempt count
and the time the send started, and leaves with one of three answers (`decide`):

- WAIT: a rate limit (429, or 503 with Retry-After). Every worker pauses through the
  shared throttle, the rows go back to the queue with their attempt given back, and
  the range comes back when the ESP said, within NEWSLETTER_GIVE_UP_AFTER.
- RETRY: any other transient error (5xx, timeouts, dropped connections, the database
  going away): the rows go back to the queue and the range comes back after an
  exponential, jittered backoff, for up to NEWSLETTER_MAX_ATTEMPTS attempts.
- GIVE_UP: the attempts or the time budget are used up; the rows fail with the reason.

Every countdown handed to Celery is a hop below the broker's visibility timeout
(`hop`): Redis would hand a task waiting longer to a second worker. A longer wait is
several hops; each run that comes back early finds the shared pause still in force
and goes back to sleep without claiming a row or making a call. The task that ran
the batch asks `task_countdown` whether it comes back, and a task whose database
went away asks `database_retry_delay` when.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from newsletter.sending.errors import SendPaused, describe, rate_limit_wait


class Action(enum.Enum):
    RETRY = "retry"
    WAIT = "wait"
    GIVE_UP = "give up"


@dataclass(frozen=True)
class Decision:
    action: Action
    countdown: int | None  # seconds before the range runs again (None: it does not)
    reason: str  # what the rows' last_error says
    wait: float | None = None  # for WAIT: how long the ESP asked every worker to pause

    @property
    def counts_attempt(self) -> bool:
        """A rate-limited attempt is given back: waiting is not failing."""
        return self.action is not Action.WAIT


def hop_cap() -> int:
    """Return the longest countdown Celery may hold: half the visibility timeout."""
    return max(1, settings.CELERY_VISIBILITY_TIMEOUT // 2)


def hop(seconds: float) -> int:
    """Return the countdown for one hop of a wait of `seconds`, at least 1 s."""
    return max(1, min(int(seconds + 0.999), hop_cap()))


def retry_delay(attempt: int, *, jitter: float) -> int:
    """Return the countdown in seconds before retry number `attempt` (1-based).

    Exponential (30 s, 60 s, 120 s, ... from NEWSLETTER_RETRY_BASE_SECONDS) with up
    to 20 % jitter so that batches that failed together do not come back together,
    and capped at half the broker's visibility timeout (0.6 of it with jitter): a
    countdown longer than the timeout would make Redis hand the waiting task to a
    second worker.
    """
    cap = hop_cap()
    base = settings.NEWSLETTER_RETRY_BASE_SECONDS
    delay = min(base * 2 ** min(max(attempt - 1, 0), 30), cap)
    return max(1, int(delay * (1 + 0.2 * min(max(jitter, 0.0), 1.0))))


def budget_start(send_started_at: datetime | None, resent_at: datetime | None) -> datetime | None:
    """Return when the give-up budget started: the send, or "Retry failed" since."""
    return max((t for t in (send_started_at, resent_at) if t), default=None)


def give_up_at(started_at: datetime | None, *, now: datetime) -> datetime:
    return (started_at or now) + timedelta(seconds=settings.NEWSLETTER_GIVE_UP_AFTER)


def decide(
    error: BaseException,
    *,
    attempts: int,
    started_at: datetime | None,
    now: datetime,
    jitter: float,
) -> Decision:
    """Decide what happens to rows a transient `error` left unsent.

    `attempts` counts this one; `started_at` is when the send (or "Retry failed")
    began, the start of the give-up budget.
    """
    wait = rate_limit_wait(error, now=now)
    if wait is not None:
        deadline = give_up_at(started_at, now=now)
        if now + timedelta(seconds=wait) > deadline:
            hours = settings.NEWSLETTER_GIVE_UP_AFTER / 3600
            return Decision(
                Action.GIVE_UP,
                None,
                f"gave up: rate limited past the {hours:g} h budget (NEWSLETTER_GIVE_UP_AFTER): "
                f"{describe(error)}",
            )
        return Decision(Action.WAIT, hop(wait), f"rate limited, waiting: {describe(error)}", wait)
    if attempts >= settings.NEWSLETTER_MAX_ATTEMPTS:
        return Decision(
            Action.GIVE_UP, None, f"gave up after {attempts} attempts: {describe(error)}"
        )
    return Decision(Action.RETRY, retry_delay(attempts, jitter=jitter), describe(error))


def paused_decision(seconds: float, *, started_at: datetime | None, now: datetime) -> Decision:
    """Decide for a range that found every worker paused before it claimed a row."""
    return decide(SendPaused(seconds), attempts=0, started_at=started_at, now=now, jitter=0)


def database_retry_delay(retries: int, *, jitter: float) -> int:
    """Return the countdown after the database went away under a task (0-based `retries`).

    The same backoff as the ESP's, so a database that is down for long is not
    hammered; the broken connection has been closed, so the retry opens a new one.
    """
    return retry_delay(retries + 1, jitter=jitter)


def task_countdown(
    *, retry_in: int | None, requeued: int, rate_limited: bool, in_process: bool
) -> int | None:
    """Return the countdown after which the batch's task runs again, None if it does not.

    Run in process (the embedded default), a retry runs at once: only an error retry
    is worth it there; a rate limit is waited out by the watchdog, from the dispatch
    record.
    """
    if retry_in is None:
        return None
    if in_process and (not requeued or rate_limited):
        return None
    return retry_in
