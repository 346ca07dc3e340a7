"""Celery tasks of the inbox: thin wrappers that send one email and retry while the ESP is down."""

from __future__ import annotations

import logging

from celery import shared_task

from inbox.services import ANSWER, inbox_email_send, reply_failed
from newsletter.sending.errors import is_permanent
from newsletter.sending.retry import retry_delay

logger = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=6, acks_late=True)
def send_inbox_email(self, name: str, object_id: int) -> bool:
    """Send one inbox email (acknowledgement, editors' notice, answer).

    A refused address fails alone; a failed answer is recorded on it, for the editor to
    see. Run in process (the embedded default), a failure is logged rather than raised,
    so the reader's page and the editor's Save stay as they are.
    """
    try:
        return inbox_email_send(name=name, object_id=object_id)
    except Exception as exc:
        final = is_permanent(exc) or self.request.is_eager or self.request.retries >= 6
        if final:
            logger.warning("inbox email %s for %s failed: %s", name, object_id, exc)
            if name == ANSWER:
                reply_failed(reply_id=object_id, error=str(exc) or exc.__class__.__name__)
            return False
        raise self.retry(
            exc=exc, countdown=retry_delay(self.request.retries + 1, jitter=0.5)
        ) from exc
