"""Writes for readers: subscribing, confirming, preferences, unsubscribing."""

from __future__ import annotations

from django.utils import timezone

from newsletter.models import ConsentRecord, Subscriber


def subscriber_unsubscribe(
    *, subscriber: Subscriber, method: str, ip: str | None = None, user_agent: str = ""
) -> bool:
    """Unsubscribe the reader and record the withdrawal; return False if already out."""
    now = timezone.now()
    changed = Subscriber.objects.filter(
        pk=subscriber.pk, status__in=[Subscriber.Status.ACTIVE, Subscriber.Status.PENDING]
    ).update(status=Subscriber.Status.UNSUBSCRIBED, unsubscribed_at=now, updated_at=now)
    if changed:
        ConsentRecord.objects.create(
            subscriber=subscriber,
            action=ConsentRecord.Action.WITHDRAW,
            method=method,
            ip=ip,
            user_agent=user_agent[:300],
        )
        subscriber.refresh_from_db()
    return bool(changed)
