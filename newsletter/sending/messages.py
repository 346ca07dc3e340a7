"""Per-reader digest messages: personal links and the bulk-sender headers."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, replace

from anymail.message import AnymailMessage
from django.core.mail import EmailMultiAlternatives

from newsletter.digest import fill_placeholders
from newsletter.emails import RenderedEmail, build_message, from_address
from newsletter.links import (
    UNSUBSCRIBE_URL,
    archive_url,
    list_unsubscribe,
    one_click_headers,
    reader_links,
)
from newsletter.models import Issue, Subscriber


def bulk_headers(*, issue: Issue, unsubscribe: str | None) -> dict[str, str]:
    """Return the headers Gmail's and Yahoo's bulk-sender rules ask of every digest.

    The one-click pair comes from newsletter.links; with `unsubscribe` None the
    per-reader List-Unsubscribe is left out (the ESP batch path sends it as a merge header).
    """
    newsletter = issue.newsletter
    return {
        **one_click_headers(newsletter=newsletter, unsubscribe=unsubscribe),
        "List-Archive": f"<{archive_url()}>",
        "Feedback-ID": f"{issue.number}:{newsletter.slug}:digest:brw",
        "Precedence": "bulk",
    }


def delivery_metadata(*, issue: Issue, subscriber: Subscriber, delivery_id: int) -> dict[str, str]:
    """Return the anymail metadata of one digest; ESP webhooks hand it back with each event."""
    return {"issue": str(issue.pk), "subscriber": str(subscriber.pk), "delivery": str(delivery_id)}


def digest_tags(issue: Issue) -> list[str]:
    return ["digest", f"issue-{issue.number}"]


def digest_message(
    rendered: RenderedEmail,
    *,
    issue: Issue,
    subscriber: Subscriber,
    delivery_id: int,
    links: dict[str, str] | None = None,
) -> EmailMultiAlternatives:
    """Return the digest for one reader: the variant with their links filled in."""
    links = links or reader_links(subscriber)
    personal = replace(  # keeps the subject and From name (issue 14)
        rendered,
        text=fill_placeholders(rendered.text, links),
        html=fill_placeholders(rendered.html, links),
    )
    message = build_message(
        personal,
        sender=issue.newsletter,
        to=subscriber.email,
        headers=bulk_headers(issue=issue, unsubscribe=links[UNSUBSCRIBE_URL]),
    )
    # anymail sends these to the ESP, which returns them in its webhooks, so every
    # tracking event finds its delivery even without the ESP message id.
    message.metadata = delivery_metadata(
        issue=issue, subscriber=subscriber, delivery_id=delivery_id
    )
    message.tags = digest_tags(issue)
    return message


@dataclass(frozen=True)
class BatchRecipient:
    delivery_id: int
    subscriber: Subscriber
    tokens: dict[str, str]  # {placeholder: token}; the ESP puts them into the links
    unsubscribe_url: str


def digest_batch_message(
    rendered: RenderedEmail,
    *,
    issue: Issue,
    recipients: Sequence[BatchRecipient],
    merge_key: dict[str, str],
    esp_extra: dict | None = None,
    max_tags: int = 10,
) -> AnymailMessage:
    """Return one ESP batch send of a variant: one copy per recipient, personalised by the ESP.

    `rendered` carries the ESP's merge fields where the tokens of the per-reader
    links go (the rest of each URL is the same for everyone, so only the tokens
    travel per recipient); `merge_key` maps each placeholder to its key in
    merge_data. Each reader's List-Unsubscribe goes as a merge header and their
    delivery as merge metadata, so every copy is exactly what the per-message path
    would have sent.
    """
    newsletter = issue.newsletter
    message = AnymailMessage(
        subject=rendered.subject,
        body=rendered.text,
        from_email=from_address(newsletter, name=rendered.from_name),
        to=[r.subscriber.email for r in recipients],
        reply_to=[newsletter.reply_to] if newsletter.reply_to else None,
        headers=bulk_headers(issue=issue, unsubscribe=None),
    )
    message.attach_alternative(rendered.html, "text/html")
    message.merge_data = {
        r.subscriber.email: {merge_key[marker]: token for marker, token in r.tokens.items()}
        for r in recipients
    }
    message.merge_headers = {
        r.subscriber.email: list_unsubscribe(r.unsubscribe_url) for r in recipients
    }
    # All three keys per recipient: not every ESP hands global metadata back with a
    # recipient's events (SparkPost keeps transmission and recipient metadata apart).
    message.metadata = {"issue": str(issue.pk)}
    message.merge_metadata = {
        r.subscriber.email: delivery_metadata(
            issue=issue, subscriber=r.subscriber, delivery_id=r.delivery_id
        )
        for r in recipients
    }
    message.tags = digest_tags(issue)[-max_tags:]
    if esp_extra:
        message.esp_extra = copy.deepcopy(esp_extra)
    return message
