"""Hand a batch of messages to the configured email backend over one connection."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from django.core.mail import EmailMessage, get_connection

from newsletter.sending.errors import describe, is_permanent


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


def message_id_of(message: EmailMessage) -> str:
    status = getattr(message, "anymail_status", None)
    if status is not None and status.message_id:
        return str(status.message_id)
    return str(message.extra_headers.get("Message-ID", ""))


def send_per_message(messages: Sequence[tuple[int, EmailMessage]]) -> list[Outcome]:
    """Send each message over one reused connection; a refused one fails alone.

    Raises BatchInterrupted on the first transient error, carrying the outcomes so
    far, so that the caller records them and retries only the rest.
    """
    outcomes: list[Outcome] = []
    if not messages:
        return outcomes
    connection = get_connection(fail_silently=False)
    try:
        connection.open()
    except Exception as exc:
        raise BatchInterrupted(outcomes, exc) from exc
    try:
        for delivery_id, message in messages:
            try:
                connection.send_messages([message])
            except Exception as exc:
                if is_permanent(exc):
                    outcomes.append(Outcome(delivery_id, error=describe(exc)))
                    continue
                raise BatchInterrupted(outcomes, exc) from exc
            outcomes.append(Outcome(delivery_id, message_id=message_id_of(message)))
    finally:
        # A failed QUIT after the messages went out changes nothing.
        with contextlib.suppress(Exception):
            connection.close()
    return outcomes
