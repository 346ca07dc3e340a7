"""Sunset: stop mailing readers who stopped reading, after asking them first.

Readers whose last NEWSLETTER_SUNSET_AFTER_ISSUES digests all went unopened and
unclicked get one re-permission email ("still want it?"). No answer within
NEWSLETTER_SUNSET_GRACE_DAYS — neither the button nor any open or click — pauses them
until they answer; the button works for as long as the email exists.

It is off by default: opens are known only through an ESP's tracking webhooks, and
without them every reader would look asleep. For the same reason it asks no one when
none of the issues it looks at has a single open or click.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from newsletter import emails
from newsletter.links import keep_url, one_click_headers, preferences_url, unsubscribe_url
from newsletter.models import Delivery, Issue, Newsletter, Repermission, Subscriber

logger = logging.getLogger(__name__)

# A sunset pause lasts until the reader answers; the send snapshot skips any reader
# whose paused_until lies ahead.
UNTIL_ANSWERED = datetime(9999, 12, 31, tzinfo=UTC)
_SALT = "newsletter.sunset"


@dataclass
class SunsetResult:
    asked: int = 0
    paused: int = 0
    kept: int = 0

    def __str__(self) -> str:
        return f"asked {self.asked}, paused {self.paused}, kept after engaging {self.kept}"


def repermission_token(repermission: Repermission) -> str:
    """Return the token of the "keep sending" button; erasure (a new secret) voids it."""
    return signing.dumps(
        {"r": repermission.pk, "h": _bind(repermission.subscriber)}, salt=_SALT, compress=True
    )


def repermission_from_token(token: str) -> Repermission | None:
    try:
        data = signing.loads(token, salt=_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("r"), int):
        return None
    found = (
        Repermission.objects.select_related("subscriber__newsletter").filter(pk=data["r"]).first()
    )
    if found is None or not constant_time_compare(str(data.get("h")), _bind(found.subscriber)):
        return None
    return found


def _bind(subscriber: Subscriber) -> str:
    return salted_hmac(_SALT, subscriber.token_secret, algorithm="sha256").hexdigest()[:16]


def sunset_candidates(
    *, newsletter: Newsletter, after_issues: int, now: datetime
) -> QuerySet[Subscriber]:
    """Return active readers who got each of the last `after_issues` issues and engaged with none."""
    issues = list(
        Issue.objects.filter(newsletter=newsletter, status=Issue.Status.SENT)
        .exclude(send_started_at=None)
        .order_by("-send_started_at")
        .values_list("pk", "send_started_at")[:after_issues]
    )
    if after_issues < 1 or len(issues) < after_issues:
        return Subscriber.objects.none()
    ids = [pk for pk, _ in issues]
    engaged = Q(opened_at__isnull=False) | Q(clicked_at__isnull=False)
    if not Delivery.objects.filter(engaged, issue_id__in=ids).exists():
        logger.warning("sunset skipped: no opens or clicks recorded for the last issues")
        return Subscriber.objects.none()
    oldest = issues[-1][1]
    in_window = Q(deliveries__issue_id__in=ids)
    return (
        Subscriber.objects.filter(newsletter=newsletter, status=Subscriber.Status.ACTIVE)
        .exclude(paused_until__gt=now)
        .annotate(
            got=Count("deliveries", filter=in_window & Q(deliveries__status=Delivery.Status.SENT)),
            engaged=Count(
                "deliveries",
                filter=in_window
                & (
                    Q(deliveries__opened_at__isnull=False) | Q(deliveries__clicked_at__isnull=False)
                ),
            ),
        )
        .filter(got=after_issues, engaged=0)
        .exclude(repermissions__outcome=Repermission.Outcome.ASKED)
        # A reader who said "keep" gets a fresh start from the issues after it.
        .exclude(
            repermissions__outcome__in=[Repermission.Outcome.KEPT, Repermission.Outcome.ENGAGED],
            repermissions__decided_at__gte=oldest,
        )
        .order_by("pk")
    )


def repermission_send(*, repermission: Repermission) -> None:
    """Email the reader the question, with a button to keep receiving and a way out."""
    subscriber = repermission.subscriber
    newsletter = subscriber.newsletter
    unsubscribe = unsubscribe_url(subscriber)
    context = {
        "newsletter": newsletter,
        "keep_url": keep_url(repermission_token(repermission)),
        "unsubscribe_url": unsubscribe,
        "preferences_url": preferences_url(subscriber),
        "issues": settings.NEWSLETTER_SUNSET_AFTER_ISSUES,
        "grace_days": settings.NEWSLETTER_SUNSET_GRACE_DAYS,
    }
    message = emails.repermission(
        subscriber,
        context=context,
        headers=one_click_headers(newsletter=newsletter, unsubscribe=unsubscribe),
    )
    message.send()


def sunset_ask(*, newsletter: Newsletter, now: datetime, limit: int = 1000) -> int:
    """Ask each new candidate once; return how many emails went out."""
    for subscriber in sunset_candidates(
        newsletter=newsletter, after_issues=settings.NEWSLETTER_SUNSET_AFTER_ISSUES, now=now
    )[:limit]:
        try:
            with transaction.atomic():
                Repermission.objects.create(subscriber=subscriber)
        except IntegrityError:
            continue  # another run asked them a moment ago
    # The row is written before the email, so a crash in between sends it on the next
    # run rather than pausing a reader who was never asked.
    sent = 0
    for repermission in Repermission.objects.select_related("subscriber__newsletter").filter(
        subscriber__newsletter=newsletter,
        outcome=Repermission.Outcome.ASKED,
        sent_at__isnull=True,
    )[:limit]:
        if repermission.subscriber.status != Subscriber.Status.ACTIVE:
            repermission.delete()  # left the list meanwhile: nothing to ask
            continue
        repermission_send(repermission=repermission)
        Repermission.objects.filter(pk=repermission.pk).update(sent_at=timezone.now())
        sent += 1
    return sent


def sunset_pause(*, newsletter: Newsletter, now: datetime) -> tuple[int, int]:
    """Pause readers who did not answer in time; return (paused, kept after engaging)."""
    deadline = now - timedelta(days=settings.NEWSLETTER_SUNSET_GRACE_DAYS)
    paused = kept = 0
    for repermission in Repermission.objects.select_related("subscriber").filter(
        subscriber__newsletter=newsletter,
        outcome=Repermission.Outcome.ASKED,
        sent_at__lte=deadline,
    ):
        subscriber = repermission.subscriber
        engaged = Delivery.objects.filter(subscriber=subscriber).filter(
            Q(opened_at__gte=repermission.sent_at) | Q(clicked_at__gte=repermission.sent_at)
        )
        with transaction.atomic():
            if engaged.exists():
                outcome, kept = Repermission.Outcome.ENGAGED, kept + 1
            elif subscriber.status != Subscriber.Status.ACTIVE:
                repermission.delete()
                continue
            else:
                outcome, paused = Repermission.Outcome.PAUSED, paused + 1
                Subscriber.objects.filter(pk=subscriber.pk).update(
                    paused_until=UNTIL_ANSWERED, updated_at=now
                )
            Repermission.objects.filter(pk=repermission.pk).update(outcome=outcome, decided_at=now)
    return paused, kept


def sunset_run(*, newsletter: Newsletter, now: datetime | None = None) -> SunsetResult:
    """Pause who did not answer, then ask who newly qualifies."""
    now = now or timezone.now()
    paused, kept = sunset_pause(newsletter=newsletter, now=now)
    asked = sunset_ask(newsletter=newsletter, now=now)
    return SunsetResult(asked=asked, paused=paused, kept=kept)


def repermission_answer(*, repermission: Repermission, now: datetime | None = None) -> bool:
    """Record "keep sending" and lift a sunset pause; return False if the reader left."""
    now = now or timezone.now()
    subscriber = repermission.subscriber
    if subscriber.status != Subscriber.Status.ACTIVE:
        return False
    with transaction.atomic():
        Repermission.objects.filter(pk=repermission.pk).update(
            outcome=Repermission.Outcome.KEPT, decided_at=now
        )
        Subscriber.objects.filter(pk=subscriber.pk, paused_until=UNTIL_ANSWERED).update(
            paused_until=None, updated_at=now
        )
    return True
