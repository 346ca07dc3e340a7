"""The per-message path: each reader's copy handed to the backend over one connection.

Two ways, same bytes on the wire:

- SMTP (Django's smtp backend or a subclass): each variant's MIME is built and
  serialised once, with ASCII tokens where the reader's address, links and
  Message-ID go; each copy is those bytes with the tokens replaced, handed to
  smtplib over the one open connection. Building a MIME tree per reader costs about
  1.3 ms of Python, which caps any one-tree-per-reader design near 770 messages/s a
  core; replacing tokens in bytes costs a few microseconds. A variant whose encoding
  would not keep the tokens intact (quoted-printable for very long lines) and a
  reader whose address is not ASCII get a message built the ordinary way.
- Any other backend (an anymail ESP without batch sending, the outbox, tests):
  one EmailMessage per reader through connection.send_messages.

Each accepted message is noted in the send journal before the next one goes, so a
crash re-sends at most the one message in flight.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import smtplib
import socket
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.core.mail.message import sanitize_address

from newsletter.emails import site_domain
from newsletter.links import PREFERENCES_URL, UNSUBSCRIBE_URL
from newsletter.sending.errors import describe, is_permanent
from newsletter.sending.journal import journal_note
from newsletter.sending.ratelimit import throttle, throttle_chunk


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


# --- one message per reader, any backend ---------------------------------------------

MessageFactory = Callable[[], EmailMessage]


def _paced(items: Sequence) -> Iterator:
    """Yield items, reserving the shared send rate a chunk at a time."""
    chunk = throttle_chunk()
    for start in range(0, len(items), chunk):
        block = items[start : start + chunk]
        throttle(len(block))
        yield from block


def send_per_message(
    messages: Sequence[tuple[int, EmailMessage]],
    *,
    connection: BaseEmailBackend | None = None,
    token: uuid.UUID | None = None,
) -> list[Outcome]:
    """Send each message over one reused connection; a refused one fails alone.

    Raises BatchInterrupted on the first transient error, carrying the outcomes so
    far, so that the caller records them and retries only the rest.
    """
    outcomes: list[Outcome] = []
    if not messages:
        return outcomes
    from django.core.mail import get_connection

    connection = connection or get_connection(fail_silently=False)
    with _opened(connection, outcomes):
        for delivery_id, message in _paced(messages):
            try:
                connection.send_messages([message])
            except Exception as exc:
                if is_permanent(exc):
                    outcomes.append(Outcome(delivery_id, error=describe(exc)))
                    continue
                raise BatchInterrupted(outcomes, exc) from exc
            mid = message_id_of(message)
            outcomes.append(Outcome(delivery_id, message_id=mid))
            if token is not None:
                journal_note(token, {delivery_id: mid})
    return outcomes


@contextlib.contextmanager
def _opened(connection: BaseEmailBackend, outcomes: list[Outcome]) -> Iterator[None]:
    try:
        connection.open()
    except Exception as exc:
        raise BatchInterrupted(outcomes, exc) from exc
    try:
        yield
    finally:
        # A failed QUIT after the messages went out changes nothing.
        with contextlib.suppress(Exception):
            connection.close()


# --- SMTP: serialise once, substitute tokens ------------------------------------------

TO_TOKEN = "brw-recipient-token@recipient.invalid"
MSGID_TOKEN = "brw-message-id-token"
_TOKENS = (TO_TOKEN, MSGID_TOKEN, UNSUBSCRIBE_URL, PREFERENCES_URL)
_SPLIT = re.compile(b"(" + b"|".join(re.escape(t.encode()) for t in _TOKENS) + b")")


class MimeTemplate:
    """A variant's message serialised once, with tokens where each reader's values go."""

    def __init__(self, message: EmailMessage, *, links_in_source: int) -> None:
        self.from_email = sanitize_address(message.from_email, message.encoding or "utf-8")
        self.envelope_from = smtplib.quoteaddr(self.from_email)
        raw = message.message().as_bytes(linesep="\r\n")
        # What smtplib.data() does to every message, done once: dot-stuffing and the
        # final CRLF. No value put in a token starts a line or holds a line break.
        raw = re.sub(rb"(?m)^\.", b"..", raw)
        if not raw.endswith(b"\r\n"):
            raw += b"\r\n"
        parts = _SPLIT.split(raw)
        # Even items are literal bytes, odd items are tokens.
        self.literals = parts[0::2]
        self.slots = [p.decode() for p in parts[1::2]]
        links = sum(1 for s in self.slots if s in (UNSUBSCRIBE_URL, PREFERENCES_URL))
        lines = raw.split(b"\r\n")
        self.longest_line = max(len(line) for line in lines)
        self.most_tokens_on_a_line = max(len(_SPLIT.findall(line)) for line in lines)
        # Every link of the source must survive encoding as a whole token, and the
        # address and Message-ID once each; otherwise (quoted-printable split a
        # token, say) this variant is built per message instead.
        self.usable = (
            links == links_in_source
            and self.slots.count(TO_TOKEN) == 1
            and self.slots.count(MSGID_TOKEN) == 1
        )

    def render(self, values: dict[str, bytes]) -> bytes:
        out = [self.literals[0]]
        for slot, literal in zip(self.slots, self.literals[1:], strict=True):
            out.append(values[slot])
            out.append(literal)
        return b"".join(out)

    def fits(self, values: dict[str, bytes]) -> bool:
        """Return True when the substituted lines stay within SMTP's 998 characters."""
        grow = max(len(v) for v in values.values()) * self.most_tokens_on_a_line
        return self.longest_line + grow <= 998


def _smtp_send(smtp: smtplib.SMTP, envelope_from: str, to: str, data: bytes) -> None:
    """One SMTP transaction for bytes already dot-stuffed, as smtplib.sendmail would do it.

    Raises smtplib's own exceptions, so errors.is_permanent() sorts them the same way.
    """
    smtp.ehlo_or_helo_if_needed()
    code, resp = smtp.docmd("mail", f"FROM:{envelope_from}")
    if code != 250:
        if code == 421:
            smtp.close()
        else:
            smtp.rset()
        raise smtplib.SMTPSenderRefused(code, resp, envelope_from)
    code, resp = smtp.docmd("rcpt", f"TO:<{to}>")
    if code not in (250, 251):
        if code == 421:
            smtp.close()
        else:
            smtp.rset()
        raise smtplib.SMTPRecipientsRefused({to: (code, resp)})
    code, resp = smtp.docmd("data")
    if code != 354:
        smtp.rset()
        raise smtplib.SMTPDataError(code, resp)
    smtp.send(data + b".\r\n")
    code, resp = smtp.getreply()
    if code != 250:
        if code == 421:
            smtp.close()
        else:
            smtp.rset()
        raise smtplib.SMTPDataError(code, resp)


def uses_smtp(connection: BaseEmailBackend) -> bool:
    return isinstance(connection, SMTPBackend)


def new_message_id(delivery_id: int) -> str:
    return f"{delivery_id}.{secrets.token_hex(8)}@{site_domain()}"


def send_smtp_raw(
    connection: SMTPBackend,
    variants: Sequence[tuple[MimeTemplate | None, Sequence[tuple[int, str, dict, MessageFactory]]]],
    *,
    token: uuid.UUID | None = None,
) -> list[Outcome]:
    """Send every reader of every variant over one SMTP connection.

    `variants` pairs a MimeTemplate (None when unusable) with its readers as
    (delivery id, address, {placeholder: link}, factory of an ordinary message).
    """
    outcomes: list[Outcome] = []
    jobs = [(template, reader) for template, readers in variants for reader in readers]
    if not jobs:
        return outcomes
    with _opened(connection, outcomes):
        with contextlib.suppress(AttributeError, OSError):
            # Commands and replies alternate; never hold a small write back (Nagle).
            connection.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for template, (delivery_id, address, links, factory) in _paced(jobs):
            mid = ""
            try:
                values = None
                if template is not None and template.usable and address.isascii():
                    mid = f"<{new_message_id(delivery_id)}>"
                    values = {
                        TO_TOKEN: address.encode(),
                        MSGID_TOKEN: mid[1:-1].encode(),
                        **{k: v.encode() for k, v in links.items()},
                    }
                    if not template.fits(values):
                        values = None
                if values is not None:
                    _smtp_send(
                        connection.connection,
                        template.envelope_from,
                        address,
                        template.render(values),
                    )
                else:
                    message = factory()
                    connection.send_messages([message])
                    mid = message_id_of(message)
            except Exception as exc:
                if is_permanent(exc):
                    outcomes.append(Outcome(delivery_id, error=describe(exc)))
                    continue
                raise BatchInterrupted(outcomes, exc) from exc
            outcomes.append(Outcome(delivery_id, message_id=mid))
            if token is not None:
                journal_note(token, {delivery_id: mid})
    return outcomes
