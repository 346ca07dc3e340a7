"""Keep a working batch's lease alive, so that leases can be short.

A claim leases its rows for NEWSLETTER_LEASE_SECONDS (60 s). While the batch works,
a heartbeat thread renews the lease every third of that, so a slow ESP, a throttled
rate or a long batch never loses its rows to another worker; a worker that dies
stops beating, and its rows are free for the watchdog within one lease.

The thread has its own database connection (Django's are per thread) and closes it
when the batch ends. A renewal that fails (the database went away) is logged: the
batch itself meets the same error on its next query and is retried.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from newsletter.models import Delivery

logger = logging.getLogger(__name__)


def lease_renew(token: uuid.UUID) -> int:
    """Extend the lease of the rows this claim still holds; return how many."""
    until = timezone.now() + timedelta(seconds=settings.NEWSLETTER_LEASE_SECONDS)
    return Delivery.objects.filter(claim_token=token, status=Delivery.Status.SENDING).update(
        lease_until=until
    )


class LeaseHeartbeat:
    """Renew the claim's lease every third of NEWSLETTER_LEASE_SECONDS until stopped.

    with LeaseHeartbeat(token):
        ... send ...
    """

    def __init__(self, token: uuid.UUID, *, every: float | None = None) -> None:
        self.token = token
        self.every = every or settings.NEWSLETTER_LEASE_SECONDS / 3
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"lease-{token}", daemon=True)
        self.beats = 0

    def _beat(self) -> None:
        try:
            while not self.stopped.wait(self.every):
                try:
                    lease_renew(self.token)
                    self.beats += 1
                except Exception:
                    logger.exception("lease heartbeat of claim %s failed", self.token)
                    connection.close()  # a broken connection is opened anew next beat
        finally:
            connection.close()

    def __enter__(self) -> LeaseHeartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)
