"""Taking a reader off the list at their word or an ESP's, and recording the withdrawal.

Shared by the reader's own pages and admin (services/subscribers.py) and by the
list-hygiene policy (services/list_hygiene.py, for complaints and ESP unsubscribes),
so that neither imports the other's module.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from newsletter.models import ConsentRecord, Subscriber


def subscriber_withdraw(
    *,
    subscriber: Subscriber,
    status: str,
    method: str,
    ip: str | None = None,
    user_agent: str = "",
    note: str = "",
    now: datetime | None = None,
) -> bool:
    """Take a subscribed (or pending) reader out with `status` and record the withdrawal.

    A conditional UPDATE makes it idempotent: only the call that changes the row
    records a withdrawal, so a repeated one-click POST or a duplicate ESP event adds
    nothing. Return whether this call took the reader out.
    """
    now = now or timezone.now()
    changed = Subscriber.objects.filter(
        pk=subscriber.pk, status__in=[Subscriber.Status.ACTIVE, Subscriber.Status.PENDING]
    ).update(status=status, unsubscribed_at=now, updated_at=now)
    if changed:
        ConsentRecord.objects.create(
            subscriber=subscriber,
            action=ConsentRecord.Action.WITHDRAW,
            method=method,
            ip=ip,
            user_agent=user_agent[:300],
            note=note[:300],
        )
        subscriber.refresh_from_db()
    return bool(changed)


def subscriber_unsubscribe(
    *, subscriber: Subscriber, method: str, ip: str | None = None, user_agent: str = ""
) -> bool:
    """Unsubscribe the reader and record the withdrawal; return False if already out."""
    return subscriber_withdraw(
        subscriber=subscriber,
        status=Subscriber.Status.UNSUBSCRIBED,
        method=method,
        ip=ip,
        user_agent=user_agent,
    )
