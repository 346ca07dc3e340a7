"""A real Celery worker over Redis and PostgreSQL delivers the digest."""

from __future__ import annotations

import email

import pytest
from django.core.management import call_command

from newsletter.models import Delivery, Issue
from tests.e2e.conftest import wait_for
from tests.factories import ArticleFactory, IssueFactory, IssueItemFactory, SubscriberFactory

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_delivers_the_digest_to_every_active_reader(start_worker, tmp_path):
    outbox = tmp_path / "worker-outbox"
    start_worker(EMAIL_BACKEND="newsletter.backends.OutboxBackend", EMAIL_OUTBOX_DIR=str(outbox))
    issue = IssueFactory(number=3)
    IssueItemFactory(issue=issue, article=ArticleFactory(title="Piraeus port upgrade"))
    readers = SubscriberFactory.create_batch(25)
    SubscriberFactory(status="unsubscribed")

    call_command("send_issue", "3")
    wait_for(lambda: Issue.objects.get(pk=issue.pk).status == Issue.Status.SENT)

    assert Delivery.objects.filter(issue=issue, status="sent").count() == 25
    files = sorted(outbox.glob("*.eml"))
    assert len(files) == 25
    recipients = sorted(email.message_from_bytes(f.read_bytes())["To"] for f in files)
    assert recipients == sorted(r.email for r in readers)
    message = email.message_from_bytes(files[0].read_bytes())
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Piraeus port upgrade" in message.get_payload()[0].get_payload(decode=True).decode()
