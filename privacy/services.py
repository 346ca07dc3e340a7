"""Erasure and the data download: the one place that knows every app holding personal data.

A reader's data lives in newsletter (the reader, consent records, deliveries, leaving
reasons, tracking events) and in inbox (questions and contributions with their
answers and files). Each app offers its own part; this module puts them together, so
neither app imports the other for it. The readers' pages and the admin call here; no
service or task of an app does. A new app that stores anything about a reader adds
its part to both functions.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from inbox.selectors import tickets_data_export
from inbox.services import tickets_erase
from newsletter.models import Subscriber
from newsletter.selectors.subscribers import subscriber_personal_data
from newsletter.services.list_hygiene import tracking_events_forget
from newsletter.services.subscribers import subscriber_anonymise


def subscriber_erase(*, subscriber: Subscriber, method: str) -> None:
    """Erase a reader's personal data in every app, keeping only a keyed hash of the address.

    One transaction: the reader's row is anonymised (see subscriber_anonymise), their
    tracking events lose what they said about them, and the questions and
    contributions sent from the address are deleted with their answers and files.
    """
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        if subscriber.status == Subscriber.Status.ERASED:
            return
        tracking_events_forget(subscriber=subscriber)
        tickets_erase(email=subscriber.email)
        subscriber_anonymise(subscriber=subscriber, method=method)


def subscriber_data_export(*, subscriber: Subscriber) -> dict[str, Any]:
    """Return everything stored about a reader, as the GDPR's right of access asks."""
    return {
        **subscriber_personal_data(subscriber=subscriber),
        "questions_and_contributions": tickets_data_export(email=subscriber.email),
    }
