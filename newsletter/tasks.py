"""Celery tasks: thin wrappers that fetch by id, call one service and retry on failure."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from newsletter.models import Delivery, Issue, Newsletter
from newsletter.sending.batch import delivery_batch_send
from newsletter.services.issues import IssueNotSendable, issue_compile, issue_start_sending
from newsletter.weeks import current_week, send_moment

logger = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=None, acks_late=True)
def send_batch(self, issue_id: int, first_id: int, last_id: int) -> dict:
    """Send one keyset range of an issue; come back later for rows not yet settled."""
    if not self.request.is_eager:
        close_old_connections()  # workers keep their connection (CELERY_DB_REUSE_MAX)
    result = delivery_batch_send(issue_id=issue_id, first_id=first_id, last_id=last_id)
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
    if result.retry_in is not None and not (self.request.is_eager and not result.requeued):
        raise self.retry(countdown=result.retry_in)
    return result.__dict__


@shared_task
def start_sending(issue_id: int) -> None:
    issue = Issue.objects.get(pk=issue_id)
    try:
        issue_start_sending(issue=issue)
    except IssueNotSendable as exc:
        logger.warning("%s", exc)


@shared_task
def compile_due_issues() -> None:
    """Draft this week's issue of each newsletter whose weekday and time have come."""
    now = timezone.now()
    for newsletter in Newsletter.objects.filter(is_active=True):
        week = current_week(newsletter, now)
        if now < send_moment(newsletter, week):
            continue
        if Issue.objects.filter(newsletter=newsletter, week=str(week)).exists():
            continue
        result = issue_compile(newsletter=newsletter, week=week, now=now)
        logger.info("%s: %s", newsletter.slug, result.message)


@shared_task
def send_due_issues() -> None:
    """Start sending each scheduled issue whose time has come."""
    for issue_id in Issue.objects.filter(
        status=Issue.Status.SCHEDULED, scheduled_at__lte=timezone.now()
    ).values_list("pk", flat=True):
        start_sending.delay(issue_id)


@shared_task
def reclaim_expired_leases() -> None:
    """Re-enqueue ranges whose rows a dead worker left leased, or whose task was lost."""
    now = timezone.now()
    stale = now - timezone.timedelta(seconds=settings.CELERY_VISIBILITY_TIMEOUT)
    for issue in Issue.objects.filter(status=Issue.Status.SENDING):
        rows = Delivery.objects.filter(issue=issue)
        expired = rows.filter(status=Delivery.Status.SENDING, lease_until__lt=now)
        if issue.send_started_at and issue.send_started_at < stale:
            expired = expired | rows.filter(status=Delivery.Status.QUEUED)
        ids = list(
            expired.order_by("id").values_list("id", flat=True)[
                : settings.NEWSLETTER_BATCH_SIZE * 50
            ]
        )
        for start in range(0, len(ids), settings.NEWSLETTER_BATCH_SIZE):
            chunk = ids[start : start + settings.NEWSLETTER_BATCH_SIZE]
            send_batch.delay(issue.pk, chunk[0], chunk[-1])
