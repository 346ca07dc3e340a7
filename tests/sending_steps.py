"""Steps shared by the sending tests: readers and an issue in bulk, a batch sent in process."""

from __future__ import annotations

from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from newsletter.models import Delivery, Issue, Subscriber
from newsletter.sending.batch import BatchResult, delivery_batch_send
from newsletter.sending.fanout import deliveries_snapshot
from tests.factories import (
    ArticleFactory,
    CategoryFactory,
    IssueFactory,
    IssueItemFactory,
    default_newsletter,
)


def snapshot(issue: Issue) -> tuple[int, int]:
    """Start the issue sending and queue its readers; return the first and last Delivery id.

    As "Send now" does (a start a test set earlier is kept), without enqueueing a
    task: the test runs the batch itself.
    """
    now = timezone.now()
    Issue.objects.filter(
        pk=issue.pk, status__in=[Issue.Status.DRAFT, Issue.Status.SCHEDULED]
    ).update(
        status=Issue.Status.SENDING,
        send_started_at=Coalesce("send_started_at", Value(now)),
        fanout_done_at=now,
    )
    issue.refresh_from_db()
    ledger(issue, now=now)
    ids = list(Delivery.objects.filter(issue=issue).values_list("id", flat=True))
    return min(ids), max(ids)


def ledger(issue: Issue, *, now) -> int:
    """Write the issue's ledger of readers eligible at `now` in one go; return its rows."""
    return len(deliveries_snapshot(issue_id=issue.pk, newsletter_id=issue.newsletter_id, now=now))


def send_in_one_batch(issue: Issue) -> BatchResult:
    """Queue the issue's readers and send them all as one batch, in process."""
    first, last = snapshot(issue)
    return delivery_batch_send(issue_id=issue.pk, first_id=first, last_id=last)


def readers(n: int, *, categories=()) -> list[Subscriber]:
    """Create n active readers in one INSERT (factories would take a query each)."""
    newsletter = default_newsletter()
    now = timezone.now()
    made = Subscriber.objects.bulk_create(
        Subscriber(
            newsletter=newsletter,
            email=f"reader{i:05d}@example.com",
            status="active",
            confirmed_at=now,
        )
        for i in range(n)
    )
    if categories:
        through = Subscriber.categories.through
        through.objects.bulk_create(
            through(subscriber_id=s.pk, category_id=categories[i % len(categories)].pk)
            for i, s in enumerate(made)
            if i % 3  # a third chose nothing: they get every section
        )
    return made


def an_issue(number: int = 40) -> Issue:
    issue = IssueFactory(number=number)
    for name in ("Finance", "Energy", "Ports"):
        IssueItemFactory(issue=issue, article=ArticleFactory(category=CategoryFactory(name=name)))
    return issue


def sent(issue: Issue) -> bool:
    return Issue.objects.get(pk=issue.pk).status == Issue.Status.SENT


def esp_env(esp, **extra: str) -> dict[str, str]:
    """Return the settings of a worker whose ESP is the stand-in, behind anymail's Mailgun."""
    return {
        "EMAIL_BACKEND": "anymail.backends.mailgun.EmailBackend",
        "ANYMAIL_MAILGUN_API_KEY": esp.api_key,
        "ANYMAIL_MAILGUN_API_URL": esp.api_url,
        **extra,
    }
