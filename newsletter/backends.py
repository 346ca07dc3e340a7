"""The embedded default email backend: one .eml file per message in var/outbox/."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage
from django.utils import timezone

_counter = itertools.count()
_lock = threading.Lock()


class OutboxBackend(BaseEmailBackend):
    """Write each message to EMAIL_OUTBOX_DIR as an RFC 5322 .eml file a mail client opens."""

    def __init__(
        self, *, outbox_dir: str | Path | None = None, fail_silently: bool = False, **kwargs
    ) -> None:
        super().__init__(fail_silently=fail_silently, **kwargs)
        self.outbox_dir = Path(outbox_dir or settings.EMAIL_OUTBOX_DIR)

    def send_messages(self, email_messages: list[EmailMessage]) -> int:
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            with _lock:
                sequence = next(_counter)
            stamp = timezone.now().strftime("%Y%m%d-%H%M%S-%f")
            path = self.outbox_dir / f"{stamp}-{sequence:06d}.eml"
            try:
                path.write_bytes(message.message().as_bytes(linesep="\r\n"))
            except OSError:
                if not self.fail_silently:
                    raise
                continue
            sent += 1
        return sent
