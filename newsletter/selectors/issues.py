"""Reads of issues: who a send would reach, its progress, its preview and size, its failures."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone, translation

from articles.languages import language_codes, language_name, reader_language
from newsletter.digest import (
    UNCATEGORISED,
    Digest,
    Variant,
    digest_build,
    digest_render,
    fill_placeholders,
)
from newsletter.emails import RenderedEmail
from newsletter.links import reader_links
from newsletter.models import Delivery, Issue, Newsletter, Subscriber
from newsletter.services.tallies import issue_tally


def issues_published(*, newsletter: Newsletter) -> QuerySet[Issue]:
    """Return the issues readers may see on the web, newest first.

    An issue is public from the moment it starts sending: readers open "view in your
    browser" from the first emails while later batches are still going out. Drafts,
    scheduled and cancelled issues never are.
    """
    return Issue.objects.filter(
        newsletter=newsletter, status__in=[Issue.Status.SENDING, Issue.Status.SENT]
    ).order_by("-number")


def issue_counts(*, issue: Issue) -> dict[str, int]:
    """Return the number of deliveries in each status."""
    return {
        row["status"]: row["n"] for row in issue.deliveries.values("status").annotate(n=Count("id"))
    }


def readers_eligible(*, newsletter_id: int, now: datetime) -> QuerySet[Subscriber]:
    """Return the readers a send started at `now` queues: active and not paused then."""
    return Subscriber.objects.filter(
        newsletter_id=newsletter_id, status=Subscriber.Status.ACTIVE
    ).filter(Q(paused_until__isnull=True) | Q(paused_until__lte=now))


@dataclass(frozen=True)
class Audience:
    readers: int  # rows a send would queue
    receiving: int  # of them, readers with at least one of their sections in the issue

    @property
    def skipped(self) -> int:
        return self.readers - self.receiving


def issue_audience(
    *, issue: Issue, now: datetime | None = None, digest: Digest | None = None
) -> Audience:
    """Return how many readers a send of `issue` started now would reach."""
    now = now or timezone.now()
    digest = digest or digest_build(issue)
    readers = readers_eligible(newsletter_id=issue.newsletter_id, now=now)
    categories = [key for key in digest.section_keys if key != UNCATEGORISED]
    receiving = (
        readers.filter(Q(categories__isnull=True) | Q(categories__in=categories)).distinct().count()
        if digest.sections
        else 0
    )
    return Audience(readers=readers.count(), receiving=receiving)


# Time left is measured on the sending rate over this window, ending at the last send:
# a moving average that a slow batch or two does not swing.
ETA_WINDOW = timedelta(minutes=5)
# No message sent for this long while readers wait: the page says the send is stalled
# rather than showing a time left that grows with every refresh.
STALL_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class Progress:
    queued: int
    in_flight: int
    sent: int
    failed: int
    skipped: int
    elapsed: timedelta | None
    finished: bool
    # Sends in the ETA window and when the last one was; seen from `now`.
    recent_sent: int = 0
    window: timedelta | None = None
    last_sent_at: datetime | None = None
    now: datetime | None = None

    @property
    def stalled(self) -> bool:
        """True when readers wait but nothing was sent for STALL_AFTER."""
        if self.finished or not (self.queued + self.in_flight) or not self.now:
            return False
        since = self.last_sent_at or (self.now - self.elapsed if self.elapsed else None)
        return since is not None and self.now - since > STALL_AFTER

    @property
    def total(self) -> int:
        return self.queued + self.in_flight + self.done

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.skipped

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, self.done * 100 // self.total)

    @property
    def rate_per_minute(self) -> float | None:
        """Readers served per minute since the send started."""
        if not self.elapsed or self.elapsed.total_seconds() < 1 or not self.done:
            return None
        return self.done * 60 / self.elapsed.total_seconds()

    @property
    def eta(self) -> timedelta | None:
        """Time left; None when finished, stalled or with no rate yet.

        The rate is a moving average over ETA_WINDOW ending at the last send, and the
        time since that send is taken off: between two refreshes with nothing sent the
        estimate counts down instead of growing, until the send is called stalled.
        """
        remaining = self.total - self.done
        if self.finished or not remaining or self.stalled:
            return None
        if self.recent_sent and self.window and self.window.total_seconds() >= 1:
            seconds = remaining * self.window.total_seconds() / self.recent_sent
            if self.last_sent_at and self.now:
                seconds -= (self.now - self.last_sent_at).total_seconds()
            return timedelta(seconds=max(1, round(seconds)))
        rate = self.rate_per_minute
        if not rate:
            return None
        return timedelta(seconds=round(remaining * 60 / rate))


def issue_progress(*, issue: Issue, now: datetime | None = None) -> Progress:
    """Return how far the send of `issue` has gone, from its Delivery rows."""
    now = now or timezone.now()
    status = Delivery.Status
    finished = issue.status == Issue.Status.SENT
    end = issue.sent_at if finished and issue.sent_at else now
    if finished:
        # A sent issue's figures no longer change: its tally has them, where counting a
        # million ledger rows on every view of the issue would take a second.
        tally = issue_tally(issue=issue)
        return Progress(
            queued=tally.in_progress,
            in_flight=0,
            sent=tally.accepted,
            failed=tally.failed,
            skipped=tally.skipped,
            elapsed=(end - issue.send_started_at) if issue.send_started_at else None,
            finished=finished,
        )
    counts = issue_counts(issue=issue)
    last_sent_at = recent_sent = window = None
    if not finished and issue.send_started_at:
        last_sent_at = issue.deliveries.aggregate(last=Max("sent_at"))["last"]
        if last_sent_at:
            start = max(last_sent_at - ETA_WINDOW, issue.send_started_at)
            window = last_sent_at - start
            recent_sent = issue.deliveries.filter(
                sent_at__gte=start, sent_at__lte=last_sent_at
            ).count()
    return Progress(
        queued=counts.get(status.QUEUED, 0),
        in_flight=counts.get(status.SENDING, 0),
        # Bounces and complaints arrive after the message was sent: it still counts as sent.
        sent=sum(counts.get(s, 0) for s in (status.SENT, status.BOUNCED, status.COMPLAINED)),
        failed=counts.get(status.FAILED, 0),
        skipped=counts.get(status.SKIPPED, 0),
        elapsed=(end - issue.send_started_at) if issue.send_started_at else None,
        finished=finished,
        recent_sent=recent_sent or 0,
        window=window,
        last_sent_at=last_sent_at,
        now=now,
    )


@dataclass(frozen=True)
class Preview:
    digest: Digest
    variant: Variant
    email: RenderedEmail
    from_address: str = ""  # as a mail client shows it, in the edition's language


def issue_preview(
    *,
    issue: Issue,
    categories: Iterable[int] = (),
    language: str | None = None,
    digest: Digest | None = None,
) -> Preview:
    """Render the issue as a reader who chose `categories` and `language` gets it.

    No categories: every section; no language: the default one. The per-reader links
    are filled in for a stand-in reader, so the preview is the message byte for byte
    apart from the reader's own tokens.
    """
    digest = (digest or digest_build(issue)).edition(reader_language(language))
    variant = digest.variant_for(categories)
    rendered = digest_render(digest, variant)
    sample = Subscriber(pk=0, newsletter=issue.newsletter, email="", token_secret="preview")
    links = reader_links(sample)
    email = replace(  # keeps the subject and From name (issue 14)
        rendered,
        text=fill_placeholders(rendered.text, links),
        html=fill_placeholders(rendered.html, links),
    )
    newsletter = issue.newsletter
    with translation.override(digest.language):
        sender = f"{newsletter.display_from_name} <{newsletter.from_email}>"
    return Preview(digest=digest, variant=variant, email=email, from_address=sender)


# Gmail clips a message whose HTML passes about 102 KB and hides the rest, footer
# (unsubscribe, preferences) included; every variant stays under 100 KB to be sure.
GMAIL_CLIP_BYTES = 102 * 1024
DIGEST_MAX_BYTES = 100 * 1024


@dataclass(frozen=True)
class DigestSize:
    """The HTML size of an issue's largest variant, as a reader's inbox receives it."""

    variant: str  # which variant, in words
    html_bytes: int

    @property
    def limit(self) -> int:
        return DIGEST_MAX_BYTES

    @property
    def limit_kb(self) -> int:
        return DIGEST_MAX_BYTES // 1024

    @property
    def over(self) -> int:
        return max(self.html_bytes - DIGEST_MAX_BYTES, 0)

    @property
    def percent(self) -> int:
        return round(100 * self.html_bytes / DIGEST_MAX_BYTES)

    @property
    def kb(self) -> str:
        return f"{self.html_bytes / 1024:.1f}"

    @property
    def over_kb(self) -> str:
        return f"{self.over / 1024:.1f}"


def issue_digest_size(*, issue: Issue, digest: Digest | None = None) -> DigestSize:
    """Return the size of the largest variant's HTML, reader links filled in.

    The variant with every section is the largest of its edition: any other one is
    the same email with sections left out. Every language edition is measured, not
    only the default one: Chinese takes three bytes a character in UTF-8, so its
    edition can pass the limit where the English one does not.
    """
    digest = digest or digest_build(issue)
    sizes = [_edition_size(issue, digest.edition(code)) for code in language_codes()]
    return max(sizes, key=lambda size: size.html_bytes)


def _edition_size(issue: Issue, edition: Digest) -> DigestSize:
    preview = issue_preview(issue=issue, categories=(), language=edition.language, digest=edition)
    label = "every section"
    if edition.language != settings.LANGUAGE_CODE:
        label += f" of the {language_name(edition.language)} edition"
    titles = [section.title for section in edition.sections_for(edition.section_keys)]
    label += f": {', '.join(titles)}" if titles else ""
    return DigestSize(variant=label, html_bytes=len(preview.email.html.encode()))


def issue_failures(*, issue: Issue, limit: int = 5) -> list[tuple[str, int]]:
    """Return the commonest reasons the issue's failed rows give, with how many rows each."""
    return list(
        Delivery.objects.filter(issue=issue, status=Delivery.Status.FAILED)
        .values("last_error")
        .annotate(n=Count("id"))
        .order_by("-n")
        .values_list("last_error", "n")[:limit]
    )
