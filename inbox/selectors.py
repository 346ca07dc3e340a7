"""Reads of the inbox: what a reader's data download holds of their questions and stories."""

from __future__ import annotations

from typing import Any

from inbox.models import Ticket
from newsletter.suppression import normalise_email


def tickets_data_export(*, email: str) -> list[dict[str, Any]]:
    """Return the questions and contributions sent from `email`, with the editors' answers."""
    tickets = (
        Ticket.objects.filter(email__iexact=normalise_email(email))
        .prefetch_related("replies")
        .order_by("created_at", "id")
    )
    return [
        {
            "reference": ticket.reference,
            "kind": ticket.kind,
            "received_at": ticket.created_at.isoformat(),
            "status": ticket.status,
            "name": ticket.name,
            "email": ticket.email,
            "organisation": ticket.organisation,
            "country": ticket.country,
            "message": ticket.body,
            "link": ticket.link,
            "attachment": ticket.attachment_name,
            "consent_text": ticket.consent_text,
            "ip": ticket.ip,
            "user_agent": ticket.user_agent,
            "answers": [
                {
                    "at": reply.created_at.isoformat(),
                    "by": reply.author_name,
                    "answer": reply.body,
                    "sent_at": reply.sent_at.isoformat() if reply.sent_at else None,
                }
                for reply in ticket.replies.all()
            ],
        }
        for ticket in tickets
    ]
