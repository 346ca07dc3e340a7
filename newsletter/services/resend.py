"""Send an issue's failed deliveries again, once their cause is fixed."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from newsletter.models import Delivery, Issue
from newsletter.sending.dispatch import ranges_dispatch
from newsletter.sending.snapshot import batch_ranges
from newsletter.services.issues import IssueActionError


def issue_retry_failed(*, issue: Issue, now: datetime | None = None) -> int:
    """Queue the issue's failed rows again and send them; return how many.

    Only failed rows go back: a reader already sent, skipped, bounced or complained is
    never touched, and each row is re-checked at send time (a reader who left since is
    skipped). The failed counter gives the rows back, and the batches count them again
    as sent, failed or skipped. Their attempts and the give-up budget start afresh.
    """
    now = now or timezone.now()
    with transaction.atomic():
        locked = Issue.objects.select_for_update().get(pk=issue.pk)
        if locked.status not in (Issue.Status.SENT, Issue.Status.SENDING):
            raise IssueActionError(
                _("No. %(number)s is %(status)s: only a sent issue has failed rows to retry.")
                % {"number": locked.number, "status": locked.get_status_display().lower()}
            )
        queued = Delivery.objects.filter(issue=locked, status=Delivery.Status.FAILED).update(
            status=Delivery.Status.QUEUED,
            attempts=0,
            last_error="",
            claim_token=None,
            lease_until=None,
        )
        if not queued:
            raise IssueActionError(
                _("No. %(number)s has no failed deliveries to retry.") % {"number": locked.number}
            )
        Issue.objects.filter(pk=locked.pk).update(
            status=Issue.Status.SENDING,
            sent_at=None,
            resent_at=now,
            failed_count=F("failed_count") - queued,
        )
        ranges = batch_ranges(issue=locked, size=settings.NEWSLETTER_BATCH_SIZE)
        ranges_dispatch(issue_id=locked.pk, ranges=ranges, now=now)
    issue.refresh_from_db()
    return queued
