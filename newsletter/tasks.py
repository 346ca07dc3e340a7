"""Celery tasks: thin wrappers that fetch by id, call one service and retry on failure."""

from __future__ import annotations

import logging
import random

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection
from django.utils import timezone

from newsletter.models import ConsentText, Issue, Newsletter
from newsletter.selectors.subscribers import categories_offered
from newsletter.sending.batch import delivery_batch_send
from newsletter.sending.dispatch import dispatches_watch
from newsletter.sending.errors import is_permanent
from newsletter.sending.fanout import issue_fan_out
from newsletter.sending.retry import database_retry_delay, retry_delay, task_countdown
from newsletter.services.issues import (
    IssueNotSendable,
    issue_compile_due,
    issue_send_scheduled,
)
from newsletter.services.jobs import job_run
from newsletter.services.subscribers import (
    Profile,
    SignupOutcome,
    reader_email_send,
    subscriber_signup,
    subscribers_purge_unconfirmed,
)

logger = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=None, acks_late=True)
def send_batch(self, issue_id: int, first_id: int, last_id: int) -> dict:
    """Send one keyset range of an issue; come back later for rows not yet settled.

    When and whether to come back is decided in newsletter.sending.retry; a database
    that went away retries the task on a new connection within the same backoff.
    """
    if not self.request.is_eager:
        close_old_connections()  # workers keep their connection (CELERY_DB_REUSE_MAX)
    try:
        result = delivery_batch_send(issue_id=issue_id, first_id=first_id, last_id=last_id)
    except (OperationalError, InterfaceError) as exc:
        if self.request.is_eager:
            raise  # in process, the caller's request or transaction owns the connection
        raise _database_retry(self, exc, f"issue {issue_id} rows {first_id}-{last_id}") from exc
    logger.info(
        "issue %s rows %s-%s: claimed %s, sent %s, failed %s, skipped %s, requeued %s, recovered %s",
        issue_id,
        first_id,
        last_id,
        result.claimed,
        result.sent,
        result.failed,
        result.skipped,
        result.requeued,
        result.recovered,
    )
    countdown = task_countdown(
        retry_in=result.retry_in,
        requeued=result.requeued,
        rate_limited=result.rate_limited,
        in_process=self.request.is_eager,
    )
    if countdown is not None:
        raise self.retry(countdown=countdown)
    return result.__dict__


@shared_task(bind=True, max_retries=None, acks_late=True)
def fan_out_issue(self, issue_id: int) -> int:
    """Write an issue's ledger chunk by chunk, each chunk's batches enqueued as it commits."""
    if not self.request.is_eager:
        close_old_connections()
    try:
        return issue_fan_out(issue_id=issue_id)
    except (OperationalError, InterfaceError) as exc:
        if self.request.is_eager:
            raise
        raise _database_retry(self, exc, f"issue {issue_id} fan-out") from exc  # from the cursor


def _database_retry(task, exc: Exception, what: str):
    """Close the broken connection and return the task's retry within the ESP's backoff.

    A terminated backend stays broken; the retry opens a new connection.
    """
    connection.close()
    countdown = database_retry_delay(task.request.retries, jitter=random.random())
    logger.warning("%s: database error, retry in %s s: %s", what, countdown, exc)
    return task.retry(exc=exc, countdown=countdown)


@shared_task
def start_sending(issue_id: int) -> None:
    """Start sending a scheduled issue whose time has come (a held one stays held)."""
    issue = Issue.objects.select_related("newsletter").get(pk=issue_id)
    try:
        issue_send_scheduled(issue=issue)
    except IssueNotSendable as exc:
        logger.warning("%s", exc)


@shared_task
def compile_due_issues() -> None:
    """Draft this week's issue of each newsletter whose weekday and time have come."""
    now = timezone.now()
    for newsletter in Newsletter.objects.filter(is_active=True):
        result = issue_compile_due(newsletter=newsletter, now=now)
        if result is not None:
            logger.info("%s: %s", newsletter.slug, result.message)


@shared_task
def send_due_issues() -> None:
    """Start sending each scheduled issue whose time has come."""
    for issue_id in Issue.objects.filter(
        status=Issue.Status.SCHEDULED, scheduled_at__lte=timezone.now()
    ).values_list("pk", flat=True):
        start_sending.delay(issue_id)


@shared_task
def reclaim_expired_leases() -> int:
    """Beat's send watchdog: re-enqueue ranges that were lost on the broker or whose
    worker died (newsletter.sending.dispatch); return how many."""
    return dispatches_watch()


# --- List hygiene: ESP tracking events and sunset ----------------------------------------


@shared_task(bind=True, max_retries=30, acks_late=True)
def process_tracking_event(self, event_id: int) -> None:
    """Apply the list-hygiene policy to one stored ESP event (tasks queued before bulk)."""
    from newsletter.services.list_hygiene import DeliveryNotSettled, tracking_event_process

    # A batch still sending this delivery would overwrite a bounce with "sent": wait for
    # it, but not for ever (30 tries a minute apart outlast any batch lease).
    wait = not self.request.is_eager and self.request.retries < self.max_retries
    try:
        tracking_event_process(event_id=event_id, wait_for_send=wait)
    except DeliveryNotSettled:
        raise self.retry(countdown=60) from None


# Set while an apply task is on its way: the webhook enqueues one task for a burst of
# events, not one per event. The task clears it before it looks, so an event stored
# after that enqueues the next task; the timeout covers a task lost on the way.
APPLY_PENDING_KEY = "newsletter:tracking-apply-pending"


def tracking_events_apply_soon() -> None:
    """Enqueue the bulk applier unless one is already on its way."""
    from django.core.cache import cache

    if cache.add(APPLY_PENDING_KEY, 1, timeout=30):
        apply_tracking_events.delay()


@shared_task(acks_late=True)
def apply_tracking_events() -> None:
    """Apply stored ESP events in bulk, a few hundred per transaction, until none are left."""
    from django.core.cache import cache

    from newsletter.services.list_hygiene import tracking_events_drain

    cache.delete(APPLY_PENDING_KEY)
    result = tracking_events_drain()
    if result.last_id:
        tracking_events_apply_soon()  # a minute's work done and more waiting: go on
    elif result.waiting:
        apply_tracking_events.apply_async(countdown=60)  # their batches are still sending


@shared_task
def process_stale_tracking_events() -> None:
    """Apply events no task took (lost on the way, or the broker was down)."""
    from newsletter.services.list_hygiene import tracking_events_drain

    tracking_events_drain(older_than=timezone.now() - timezone.timedelta(minutes=5))


@shared_task
def sunset_readers() -> None:
    """Ask readers who stopped opening whether to keep sending; pause those who never answer."""
    from newsletter.services.sunset import sunset_run

    if not settings.NEWSLETTER_SUNSET_AFTER_ISSUES:
        return
    for newsletter in Newsletter.objects.filter(is_active=True):
        result = sunset_run(newsletter=newsletter)
        logger.info("%s sunset: %s", newsletter.slug, result)


@shared_task(acks_late=True)
def run_background_job(job_id: int) -> None:
    """Run an admin import or export (newsletter/services/jobs.py); a redelivery runs it once."""
    job_run(job_id=job_id)


@shared_task(acks_late=True)
def process_signup(
    *,
    newsletter_id: int,
    email: str,
    name: str,
    organisation: str,
    country: str,
    category_ids: list[int],
    consent_text_id: int,
    ip: str | None,
    user_agent: str,
    form: str,
    language: str = "",
) -> SignupOutcome:
    """Sign up an address from a public form, off the request path (equal time for every state)."""
    newsletter = Newsletter.objects.get(pk=newsletter_id)
    return subscriber_signup(
        newsletter=newsletter,
        email=email,
        profile=Profile(
            name=name,
            organisation=organisation,
            country=country,
            categories=tuple(categories_offered(newsletter=newsletter).filter(pk__in=category_ids)),
            language=language,
        ),
        consent_text=ConsentText.objects.get(pk=consent_text_id),
        ip=ip,
        user_agent=user_agent,
        form=form,
    )


@shared_task(bind=True, max_retries=6, acks_late=True)
def send_reader_email(
    self, name: str, subscriber_id: int, to: str = "", pending_id: int | None = None
) -> bool:
    """Send one reader email (confirmation, welcome, ...); retry while the ESP is down.

    A refused address fails alone and is logged. Run in process (the embedded default),
    a failure is logged rather than raised, so the reader's page stays the same.
    """
    try:
        return reader_email_send(
            name=name, subscriber_id=subscriber_id, to=to, pending_id=pending_id
        )
    except Exception as exc:
        if is_permanent(exc) or self.request.is_eager:
            logger.warning("reader email %s to subscriber %s failed: %s", name, subscriber_id, exc)
            return False
        raise self.retry(
            exc=exc, countdown=retry_delay(self.request.retries + 1, jitter=0.5)
        ) from exc


@shared_task
def purge_unconfirmed_signups() -> int:
    """Delete signups nobody confirmed within NEWSLETTER_PENDING_PURGE_DAYS."""
    older_than = timezone.now() - timezone.timedelta(days=settings.NEWSLETTER_PENDING_PURGE_DAYS)
    deleted = subscribers_purge_unconfirmed(older_than=older_than)
    logger.info("deleted %s unconfirmed signups", deleted)
    return deleted
