"""The interface every way out shares, as Django's BaseEmailBackend is for email backends.

A way out is opened once per batch (one connection, one session), then `send` is
called once per variant with the rendered content and that variant's recipients
(the claimed rows: delivery id and reader), and returns one Outcome per recipient
it settled. A transient failure stops the batch with BatchInterrupted, carrying the
outcomes settled before it, so the caller records those and leaves the rest to the
retry decision (retry.py). Each accepted call is noted in the send journal before
the next one goes, so a crash re-sends at most the one call in flight.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

from newsletter.links import ReaderLinks
from newsletter.models import Issue
from newsletter.sending.claim import Row
from newsletter.sending.errors import describe
from newsletter.sending.ratelimit import throttle, throttle_chunk
from newsletter.sending.render import RenderedVariant


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    message_id: str = ""
    error: str = ""  # set when the backend refused this message for good

    @property
    def sent(self) -> bool:
        return not self.error


class BatchInterrupted(Exception):
    """The backend failed transiently part-way; `outcomes` holds what was settled first."""

    def __init__(self, outcomes: list[Outcome], error: BaseException) -> None:
        super().__init__(describe(error))
        self.outcomes = outcomes
        self.error = error


class WayOut:
    """One way out of the pipeline over one email connection.

    with way_out:
        outcomes = way_out.send(variant, recipients)
    """

    def __init__(self, connection: BaseEmailBackend, *, issue: Issue, token: uuid.UUID) -> None:
        self.connection = connection
        self.issue = issue
        self.token = token  # the claim: accepted rows are noted in its send journal
        self.links = ReaderLinks()

    def send(self, variant: RenderedVariant, recipients: Sequence[Row]) -> list[Outcome]:
        """Send `variant` to each recipient; return one Outcome per recipient."""
        raise NotImplementedError

    def __enter__(self) -> WayOut:
        try:
            self.connection.open()
        except Exception as exc:
            raise BatchInterrupted([], exc) from exc
        return self

    def __exit__(self, *exc) -> None:
        # A failed QUIT after the messages went out changes nothing.
        with contextlib.suppress(Exception):
            self.connection.close()


def message_id_of(message: EmailMessage) -> str:
    status = getattr(message, "anymail_status", None)
    if status is not None and status.message_id:
        return str(status.message_id)
    return str(message.extra_headers.get("Message-ID", ""))


def paced(items: Sequence) -> Iterator:
    """Yield items, reserving the shared send rate a chunk at a time."""
    chunk = throttle_chunk()
    for start in range(0, len(items), chunk):
        block = items[start : start + chunk]
        throttle(len(block))
        yield from block
