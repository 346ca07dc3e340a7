"""What a send failure says: permanent or transient, rate limited, possibly delivered.

These are facts about an error; what to do about them (retry when, count the attempt
or not, give up) is decided in one place, retry.py.
"""

from __future__ import annotations

import smtplib
import socket
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
from anymail.exceptions import (
    AnymailInvalidAddress,
    AnymailRecipientsRefused,
    AnymailRequestsAPIError,
)


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


class SendPaused(Exception):
    """Every worker is asked to wait: an ESP rate limit is in force for `seconds` more."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"sending paused for {seconds:.0f} s by the ESP's rate limit")
        self.seconds = seconds


# How long to wait after a 429 that names no time; ESPs' own guidance is about a minute.
RATE_LIMIT_DEFAULT_WAIT = 60


def _retry_after_header(value: str | None, *, now: datetime) -> float | None:
    """Return the seconds a Retry-After header asks for: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def rate_limit_wait(exc: BaseException, *, now: datetime | None = None) -> float | None:
    """Return how long the ESP asks everyone to wait, or None if `exc` is no rate limit.

    A 429 is a rate limit, waited out for its Retry-After (or a minute when it names
    none); a 503 is one only when it carries Retry-After, otherwise it is an outage
    retried like any 5xx. The header is read from the response anymail keeps on its
    exception; a limit we paused for ourselves (SendPaused) carries its own time.
    """
    if isinstance(exc, SendPaused):
        return exc.seconds
    if not isinstance(exc, AnymailRequestsAPIError) or exc.status_code not in (429, 503):
        return None
    response = exc.response
    header = response.headers.get("Retry-After") if response is not None else None
    wait = _retry_after_header(header, now=now or datetime.now(UTC))
    if wait is None:
        return float(RATE_LIMIT_DEFAULT_WAIT) if exc.status_code == 429 else None
    return wait


def is_ambiguous(exc: BaseException) -> bool:
    """Return True when the request may have reached the ESP although no answer came.

    A read timeout or a connection dropped after the request was written leaves the
    call's fate unknown: it is retried, and its recipients may get a second copy. A
    refused or timed-out connect never reached anyone.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, requests.ConnectTimeout):
            return False
        if isinstance(exc, requests.ReadTimeout | requests.exceptions.ChunkedEncodingError):
            return True
        if isinstance(exc, requests.ConnectionError):
            return not _refused_connect(exc)
        if isinstance(exc, smtplib.SMTPServerDisconnected | socket.timeout | ConnectionResetError):
            return True
        if isinstance(exc, ConnectionRefusedError):
            return False
        exc = exc.__cause__ or exc.__context__
    return False


def _refused_connect(exc: BaseException) -> bool:
    text = str(exc)
    return any(
        sign in text
        for sign in ("NewConnectionError", "Connection refused", "Name or service not known")
    )
