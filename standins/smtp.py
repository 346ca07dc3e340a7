"""A local SMTP sink (aiosmtpd), for the per-message path in tests and benchmarks.

Every message it accepts is counted per recipient and, up to `keep`, kept whole.
Errors on demand: `refuse(address)` answers RCPT TO with 550 (a permanent refusal
of that one reader), `fail_next(n)` answers the next n transactions' DATA with 451
(a transient error), as a real relay would; `delay` slows every message.

    with SmtpSink() as sink:
        settings: EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend,
                  EMAIL_HOST=127.0.0.1, EMAIL_PORT=sink.port
        sink.messages  # [(envelope recipients, raw bytes)]
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import threading
import time

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.sink._refused:
            return "550 5.1.1 Mailbox unavailable (stand-in refusal on demand)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.sink.delay:
            await asyncio.sleep(self.sink.delay)
        return self.sink._accept(envelope.rcpt_tos, envelope.content)


class SmtpSink:
    def __init__(self, *, keep: int | None = None) -> None:
        """`keep`: how many messages to keep whole (None: all); counts are always kept."""
        self.keep = keep
        self.delay = 0.0  # seconds before answering each message's DATA
        self.lock = threading.Lock()
        self.messages: list[tuple[list[str], bytes]] = []
        self.received_count: collections.Counter[str] = collections.Counter()
        self.accepted_at: list[tuple[float, int]] = []  # (time.monotonic(), recipients)
        self._refused: set[str] = set()
        self._fail = 0
        self.port = 0
        self._controller: Controller | None = None

    def refuse(self, address: str) -> None:
        self._refused.add(address.lower())

    def fail_next(self, n: int = 1) -> None:
        with self.lock:
            self._fail += n

    @property
    def total(self) -> int:
        with self.lock:
            return sum(self.received_count.values())

    def reset(self) -> None:
        with self.lock:
            self.messages.clear()
            self.received_count.clear()
            self.accepted_at.clear()
            self._refused.clear()
            self._fail = 0

    def _accept(self, recipients: list[str], content: bytes) -> str:
        with self.lock:
            if self._fail:
                self._fail -= 1
                return "451 4.3.0 Try again later (stand-in failure on demand)"
            self.received_count.update(r.lower() for r in recipients)
            self.accepted_at.append((time.monotonic(), len(recipients)))
            if self.keep is None or len(self.messages) < self.keep:
                self.messages.append((list(recipients), content))
        return "250 Message accepted for delivery"

    def start(self) -> SmtpSink:
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # a line per connection otherwise
        self.port = free_port()
        self._controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, data_size_limit=10_000_000
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
