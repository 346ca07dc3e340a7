"""Send an issue's failed deliveries again, once their cause is fixed."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from newsletter.models import Delivery, Issue
from newsletter.sending.fanout import queued_fan_out
from newsletter.services.issues import IssueActionError, issue_resume_sending


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
        issue_resume_sending(issue=locked, requeued=queued, now=now)
        queued_fan_out(issue=locked, now=now)
    issue.refresh_from_db()
    return queued
