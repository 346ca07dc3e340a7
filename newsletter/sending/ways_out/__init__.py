"""The ways out, behind one interface (base.py): pick the one for the configured backend.

esp.py          an anymail ESP that takes a whole variant's readers in one call
smtp.py         Django's SMTP backend: each variant serialised once, tokens per reader
per_message.py  any other backend: one message per reader
"""

from __future__ import annotations

import uuid

from django.core.mail import get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend

from newsletter.models import Issue
from newsletter.sending.ways_out.base import BatchInterrupted, Outcome, WayOut
from newsletter.sending.ways_out.esp import EspBatch, batch_profile
from newsletter.sending.ways_out.per_message import PerMessage
from newsletter.sending.ways_out.smtp import SmtpRaw

__all__ = ["BatchInterrupted", "Outcome", "WayOut", "call_size", "way_out"]


def way_out(*, issue: Issue, token: uuid.UUID) -> WayOut:
    """Return the way out for the configured email backend, over a new connection."""
    connection = get_connection(fail_silently=False)
    profile = batch_profile(connection)
    if profile is not None:
        return EspBatch(connection, issue=issue, token=token, profile=profile)
    if isinstance(connection, SMTPBackend):
        return SmtpRaw(connection, issue=issue, token=token)
    return PerMessage(connection, issue=issue, token=token)


def call_size(connection: BaseEmailBackend | None = None) -> int:
    """Return the most recipients one call to the backend carries (1 per message)."""
    profile = batch_profile(connection or get_connection(fail_silently=False))
    return profile.limit if profile is not None else 1
