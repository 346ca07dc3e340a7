"""Steps shared by the sending tests: queue an issue's readers, send them as one batch."""

from __future__ import annotations

from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from newsletter.models import Delivery, Issue
from newsletter.sending.batch import BatchResult, delivery_batch_send
from newsletter.sending.fanout import deliveries_snapshot


def snapshot(issue: Issue) -> tuple[int, int]:
    """Start the issue sending and queue its readers; return the first and last Delivery id.

    As "Send now" does (a start a test set earlier is kept), without enqueueing a
    task: the test runs the batch itself.
    """
    now = timezone.now()
    Issue.objects.filter(
        pk=issue.pk, status__in=[Issue.Status.DRAFT, Issue.Status.SCHEDULED]
    ).update(status=Issue.Status.SENDING, send_started_at=Coalesce("send_started_at", Value(now)))
    issue.refresh_from_db()
    deliveries_snapshot(issue=issue, now=now)
    ids = list(Delivery.objects.filter(issue=issue).values_list("id", flat=True))
    return min(ids), max(ids)


def send_in_one_batch(issue: Issue) -> BatchResult:
    """Queue the issue's readers and send them all as one batch, in process."""
    first, last = snapshot(issue)
    return delivery_batch_send(issue_id=issue.pk, first_id=first, last_id=last)
