"""Helpers shared by the sending tests."""

from __future__ import annotations

from django.utils import timezone

from newsletter.models import Delivery, Issue
from newsletter.sending.batch import BatchResult, delivery_batch_send
from newsletter.sending.snapshot import deliveries_snapshot


def snapshot(issue: Issue) -> tuple[int, int]:
    """Queue the issue's readers; return the first and last Delivery id."""
    deliveries_snapshot(issue=issue, now=timezone.now())
    ids = list(Delivery.objects.filter(issue=issue).values_list("id", flat=True))
    return min(ids), max(ids)


def send_in_one_batch(issue: Issue) -> BatchResult:
    """Queue the issue's readers and send them all as one batch, in process."""
    first, last = snapshot(issue)
    return delivery_batch_send(issue_id=issue.pk, first_id=first, last_id=last)
