"""Per-reader digest messages: personal links and the bulk-sender headers."""

from __future__ import annotations

from django.core.mail import EmailMultiAlternatives
from django.urls import reverse

from newsletter.digest import PREFERENCES_URL, UNSUBSCRIBE_URL, absolute, fill_placeholders
from newsletter.emails import RenderedEmail, build_message, site_domain
from newsletter.models import Issue, Newsletter, Subscriber
from newsletter.tokens import reader_tokens


def unsubscribe_url(subscriber: Subscriber) -> str:
    return absolute(
        reverse(
            "newsletter:unsubscribe", args=[reader_tokens.make_token(subscriber, "unsubscribe")]
        )
    )


def preferences_url(subscriber: Subscriber) -> str:
    return absolute(
        reverse(
            "newsletter:preferences", args=[reader_tokens.make_token(subscriber, "preferences")]
        )
    )


def reader_links(subscriber: Subscriber) -> dict[str, str]:
    """Return the value of each per-reader placeholder for this reader."""
    return {
        UNSUBSCRIBE_URL: unsubscribe_url(subscriber),
        PREFERENCES_URL: preferences_url(subscriber),
    }


def list_id(newsletter: Newsletter) -> str:
    return f'"{newsletter.name}" <{newsletter.slug}.{site_domain()}>'


def bulk_headers(*, issue: Issue, unsubscribe: str) -> dict[str, str]:
    """Return the headers Gmail's and Yahoo's bulk-sender rules ask of every digest.

    List-Unsubscribe with List-Unsubscribe-Post is RFC 8058 one-click: the mailbox
    provider POSTs to the https URL, no page, cookie or login involved.
    """
    newsletter = issue.newsletter
    return {
        "List-Id": list_id(newsletter),
        "List-Unsubscribe": f"<{unsubscribe}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Archive": f"<{absolute(reverse('newsletter:archive'))}>",
        "Feedback-ID": f"{issue.number}:{newsletter.slug}:digest:brw",
        "Precedence": "bulk",
    }


def digest_message(
    rendered: RenderedEmail, *, issue: Issue, subscriber: Subscriber, delivery_id: int
) -> EmailMultiAlternatives:
    """Return the digest for one reader: the variant with their links filled in."""
    links = reader_links(subscriber)
    personal = RenderedEmail(
        subject=rendered.subject,
        text=fill_placeholders(rendered.text, links),
        html=fill_placeholders(rendered.html, links),
    )
    message = build_message(
        personal,
        newsletter=issue.newsletter,
        to=subscriber.email,
        headers=bulk_headers(issue=issue, unsubscribe=links[UNSUBSCRIBE_URL]),
    )
    # anymail sends these to the ESP, which returns them in its webhooks, so every
    # tracking event finds its delivery even without the ESP message id.
    message.metadata = {
        "issue": str(issue.pk),
        "subscriber": str(subscriber.pk),
        "delivery": str(delivery_id),
    }
    message.tags = ["digest", f"issue-{issue.number}"]
    return message
