"""The one entry point from outside: anymail's tracking signal.

Anymail calls this once per event while the ESP's webhook request waits. It does as
little as it can — one INSERT, a duplicate dropped by the ESP's event id — and, once
the row is committed, makes sure a bulk apply task is on its way (one for a burst of
events, not one per event), so a slow policy never makes the ESP time out and retry.
"""

from __future__ import annotations

from typing import Any

from anymail.signals import AnymailTrackingEvent
from django.db import transaction

from newsletter.services.esp_events import tracking_event_store


def tracking_received(sender: Any, event: AnymailTrackingEvent, esp_name: str, **kwargs) -> None:
    from newsletter.tasks import tracking_events_apply_soon  # tasks import services: no cycle

    stored = tracking_event_store(event=event, esp_name=esp_name)
    if stored is not None:
        transaction.on_commit(tracking_events_apply_soon)
