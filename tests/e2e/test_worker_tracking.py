"""A real Celery worker over Redis and PostgreSQL applies a webhook's complaint."""

from __future__ import annotations

import pytest

from newsletter.models import Subscriber, TrackingEvent
from newsletter.suppression import is_suppressed
from tests.e2e.conftest import wait_for
from tests.factories import DeliveryFactory
from tests.test_webhooks_mailgun import MailgunFormat
from tests.webhook_steps import SECRET, Target, post

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_a_worker_suppresses_a_reader_whose_complaint_the_webhook_stored(
    start_worker, client, settings
):
    settings.NEWSLETTER_WEBHOOK_ESPS = ["mailgun"]  # the ESP this newsroom sends through
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET, **MailgunFormat.settings}
    start_worker()
    fmt = MailgunFormat()
    delivery = DeliveryFactory(esp_message_id=fmt.message_id(1))
    body = fmt.body("complaint", Target.of(delivery), event_id="e2e")

    assert post(client, fmt, body).status_code == 200
    assert post(client, fmt, body).status_code == 200  # the ESP's retry

    wait_for(lambda: TrackingEvent.objects.filter(processed_at__isnull=False).exists())
    reader = Subscriber.objects.get(pk=delivery.subscriber_id)
    assert reader.status == Subscriber.Status.COMPLAINED
    assert is_suppressed(newsletter=reader.newsletter, email=reader.email)
    assert TrackingEvent.objects.count() == 1
