"""Reads about readers: lookups by address, the consent text in force, their data, counts."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Count, QuerySet
from django.db.models.functions import Lower
from django.utils import translation

from articles.languages import reader_language
from articles.models import Category
from newsletter.estimates import BIG, value_shares
from newsletter.links import issue_web_url
from newsletter.models import ConsentText, Delivery, Newsletter, PendingSignup, Subscriber
from newsletter.selectors.issues import issues_published
from newsletter.suppression import normalise_email


def categories_offered(*, newsletter: Newsletter) -> QuerySet[Category]:
    """Return the sections a reader of `newsletter` may choose (all when it offers none).

    A category an editor has not turned on is never offered, whatever the list says.
    """
    offered = newsletter.categories.all()
    if not offered.exists():
        offered = Category.objects.all()
    # names: each section's name in the other languages (Category.name_in), one query.
    return offered.filter(enabled=True).prefetch_related("names").order_by("position", "name")


def consent_text_current(
    *, newsletter: Newsletter, language: str | None = None
) -> ConsentText | None:
    """Return the consent wording new signups agree to: the latest version in their language.

    `language` defaults to the page's. A language with no text of its own gets the
    default language's latest (a new language before its lawyers have read it).
    """
    language = reader_language(language or translation.get_language())
    texts = ConsentText.objects.filter(newsletter=newsletter).order_by("-version")
    return (
        texts.filter(language=language).first()
        or texts.filter(language=settings.LANGUAGE_CODE).first()
        or texts.first()
    )


def pending_signup(*, subscriber: Subscriber, pending_id: int | None) -> PendingSignup | None:
    """Return the signup details held for this reader under `pending_id`, if still there."""
    if not pending_id:
        return None
    return (
        PendingSignup.objects.select_related("consent_text")
        .filter(pk=pending_id, subscriber=subscriber)
        .first()
    )


def consent_text_agreed(*, subscriber: Subscriber) -> ConsentText | None:
    """Return the text a reader agrees to by confirming: their latest signup's, else the current one.

    Readers imported without prior consent never saw a form, so the confirm page shows
    them the current text and confirming records that version.
    """
    signup = (
        subscriber.consent_records.filter(action="signup", consent_text__isnull=False)
        .select_related("consent_text")
        .order_by("-at", "-id")
        .first()
    )
    if signup is not None:
        return signup.consent_text
    return consent_text_current(newsletter=subscriber.newsletter)


def subscriber_by_email(*, newsletter: Newsletter, email: str) -> Subscriber | None:
    """Return the reader of `newsletter` with this address in any spelling, if any.

    Filtering on LOWER(email) lets PostgreSQL use the case-insensitive unique index.
    """
    return (
        Subscriber.objects.alias(email_lower=Lower("email"))
        .filter(newsletter=newsletter, email_lower=normalise_email(email))
        .first()
    )


def latest_issue_url(*, newsletter: Newsletter) -> str:
    """Return the web link of the newsletter's latest sent issue, or "" before the first."""
    issue = issues_published(newsletter=newsletter).first()
    return issue_web_url(issue) if issue else ""


def _when(value) -> str | None:
    return value.isoformat() if value else None


def subscriber_personal_data(*, subscriber: Subscriber) -> dict[str, Any]:
    """Return what this app stores about a reader (privacy.services adds the other apps')."""
    records = subscriber.consent_records.select_related("consent_text").order_by("at", "id")
    deliveries = (
        Delivery.objects.filter(subscriber=subscriber)
        .select_related("issue")
        .order_by("issue__number")
    )
    return {
        "newsletter": subscriber.newsletter.name,
        "profile": {
            "email": subscriber.email,
            "name": subscriber.name,
            "organisation": subscriber.organisation,
            "country": subscriber.country,
            "language": subscriber.language,
            "status": subscriber.status,
            "sections": [c.name for c in subscriber.categories.order_by("position", "name")]
            or ["all"],
            "source": subscriber.source,
            "signed_up_at": _when(subscriber.created_at),
            "confirmed_at": _when(subscriber.confirmed_at),
            "unsubscribed_at": _when(subscriber.unsubscribed_at),
            "paused_until": _when(subscriber.paused_until),
        },
        "consent_history": [
            {
                "action": record.action,
                "at": _when(record.at),
                "ip": record.ip,
                "user_agent": record.user_agent,
                "form": record.form,
                "method": record.method,
                "note": record.note,
                "consent_text_version": record.consent_text.version
                if record.consent_text
                else None,
                "consent_text": record.consent_text.text if record.consent_text else None,
            }
            for record in records
        ],
        "deliveries": [
            {
                "issue": delivery.issue.number,
                "title": delivery.issue.title,
                "week": delivery.issue.week,
                "status": delivery.status,
                "sent_at": _when(delivery.sent_at),
                "first_opened_at": _when(delivery.opened_at),
                "opens": delivery.open_count,
                "first_clicked_at": _when(delivery.clicked_at),
                "clicks": delivery.click_count,
            }
            for delivery in deliveries
        ],
    }


def subscriber_counts_by_status(*, newsletter: Newsletter) -> tuple[dict[str, int], bool]:
    """Return the newsletter's readers per status, and whether the figures are estimates.

    A big list is estimated from PostgreSQL's statistics (newsletter/estimates.py): the
    share of each status and of this newsletter in the whole table, taken as unrelated.
    """
    rows, shares = value_shares(Subscriber, ["status", "newsletter_id"])
    if rows is not None and rows >= BIG:
        statuses = shares.get("status", {})
        newsletters = shares.get("newsletter_id", {})
        share = newsletters.get(str(newsletter.pk), 1.0 if len(newsletters) <= 1 else 0.0)
        if statuses:
            return {status: round(rows * part * share) for status, part in statuses.items()}, True
    readers = Subscriber.objects.filter(newsletter=newsletter)
    return dict(readers.values("status").annotate(n=Count("id")).values_list("status", "n")), False
