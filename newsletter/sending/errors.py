"""Sort send failures into transient (retry later) and permanent (fail the row now)."""

from __future__ import annotations

import smtplib
import socket

from anymail.exceptions import (
    AnymailInvalidAddress,
    AnymailRecipientsRefused,
    AnymailRequestsAPIError,
)
from django.conf import settings


class TransientSendError(Exception):
    """The backend could not take the rest of the batch right now; retry it later."""


def is_permanent(exc: BaseException) -> bool:
    """Return True when retrying `exc` cannot help: the recipient or message is refused.

    Server-side trouble (ESP 5xx, 429, timeouts, dropped connections, SMTP 4xx) is
    transient. A refused recipient (ESP 4xx for this message, SMTP 5xx for the
    address) is permanent for that one message.
    """
    if isinstance(exc, AnymailRecipientsRefused | AnymailInvalidAddress):
        return True
    if isinstance(exc, AnymailRequestsAPIError):
        status = exc.status_code
        return status is not None and 400 <= status < 500 and status not in (401, 403, 408, 429)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(500 <= code < 600 for code in codes)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return False  # our From is refused: a configuration problem, never the reader's
    if isinstance(exc, smtplib.SMTPResponseException):
        return 500 <= exc.smtp_code < 600
    if isinstance(exc, smtplib.SMTPException | socket.timeout | OSError):
        return False
    return False


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def retry_delay(attempt: int, *, jitter: float) -> int:
    """Return the countdown in seconds before retry number `attempt` (1-based).

    Exponential (30 s, 60 s, 120 s, ... from NEWSLETTER_RETRY_BASE_SECONDS) with up
    to 20 % jitter so that batches that failed together do not come back together,
    and capped at half the broker's visibility timeout (0.6 of it with jitter): a
    countdown longer than the timeout would make Redis hand the waiting task to a
    second worker.
    """
    cap = settings.CELERY_VISIBILITY_TIMEOUT // 2
    base = settings.NEWSLETTER_RETRY_BASE_SECONDS
    delay = min(base * 2 ** min(max(attempt - 1, 0), 30), cap)
    return max(1, int(delay * (1 + 0.2 * min(max(jitter, 0.0), 1.0))))
