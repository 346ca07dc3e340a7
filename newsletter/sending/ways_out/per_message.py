"""Any backend, one message per reader: an anymail ESP without batch sending, the outbox, tests."""

from __future__ import annotations

from collections.abc import Sequence

from newsletter.sending.claim import Row
from newsletter.sending.errors import describe, is_permanent
from newsletter.sending.journal import journal_note
from newsletter.sending.messages import digest_message
from newsletter.sending.render import RenderedVariant
from newsletter.sending.ways_out.base import (
    BatchInterrupted,
    Outcome,
    WayOut,
    message_id_of,
    paced,
)


class PerMessage(WayOut):
    """Each reader's copy through connection.send_messages; a refused one fails alone."""

    def send(self, variant: RenderedVariant, recipients: Sequence[Row]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for row in paced(recipients):
            message = digest_message(
                variant.rendered,
                issue=self.issue,
                subscriber=row.subscriber,
                delivery_id=row.pk,
                links=self.links(row.subscriber),
            )
            try:
                self.connection.send_messages([message])
            except Exception as exc:
                if is_permanent(exc):
                    outcomes.append(Outcome(row.pk, error=describe(exc)))
                    continue
                raise BatchInterrupted(outcomes, exc) from exc
            mid = message_id_of(message)
            outcomes.append(Outcome(row.pk, message_id=mid))
            journal_note(self.token, {row.pk: mid})
        return outcomes
