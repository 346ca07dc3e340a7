"""Every link a reader is sent, and the List-* headers that carry the way out.

The digest, the transactional emails (confirm, welcome, already subscribed) and the
re-permission email all take their URLs and their one-click headers from here, so an
unsubscribe link or a List-Unsubscribe header is written one way only.

URLs are absolute (SITE_URL + the path). reverse() runs in the active language, so a
caller inside translation.override() gets that language's pages (/zh-hans/…).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from django.conf import settings
from django.urls import reverse

from newsletter.emails import site_domain
from newsletter.models import Issue, Newsletter, Subscriber
from newsletter.tokens import issue_preview_token, reader_tokens

# Per-reader values are left as these ASCII markers in the rendered variant and
# substituted per message; they survive template escaping, CSS inlining and MIME
# encoding unchanged, and the ESP batch path maps them to its own merge fields.
UNSUBSCRIBE_URL = "%%UNSUBSCRIBE_URL%%"
PREFERENCES_URL = "%%PREFERENCES_URL%%"
PLACEHOLDERS = (UNSUBSCRIBE_URL, PREFERENCES_URL)


def absolute(path: str) -> str:
    return settings.SITE_URL + path


# --- Pages on the site ------------------------------------------------------------------


def archive_url() -> str:
    return absolute(reverse("newsletter:archive"))


def feed_url() -> str:
    return absolute(reverse("newsletter:feed"))


def issue_web_url(issue: Issue) -> str:
    return absolute(reverse("newsletter:archive-issue", args=[issue.number]))


def issue_preview_url(issue: Issue) -> str:
    """Return the signed web preview of an issue in any status (for test copies)."""
    return absolute(reverse("newsletter:issue-preview", args=[issue_preview_token(issue)]))


def tracked_url(url: str, issue: Issue, *, medium: str | None = None) -> str:
    """Return `url`, absolute, with the issue's UTM tags added (existing query kept).

    `medium` replaces the issue's utm_medium (the web archive says "web"), but only
    when the issue has one: an editor who cleared the tags gets untagged links.
    """
    if not urlsplit(url).scheme:
        url = urljoin(settings.SITE_URL + "/", url)
    tags = {
        key: value
        for key, value in (
            ("utm_source", issue.utm_source),
            ("utm_medium", (medium or issue.utm_medium) if issue.utm_medium else ""),
            ("utm_campaign", issue.utm_campaign),
        )
        if value
    }
    if not tags:
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in tags]
    return urlunsplit(parts._replace(query=urlencode(query + list(tags.items()))))


# --- A reader's own links (signed tokens) -----------------------------------------------


def confirm_url(token: str) -> str:
    return absolute(reverse("newsletter:confirm", args=[token]))


def keep_url(token: str) -> str:
    """Return the re-permission email's "keep sending" button (token from services.sunset)."""
    return absolute(reverse("newsletter:keep", args=[token]))


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


_TOKEN_SLOT = "0-token"


class ReaderLinks:
    """Build many readers' links fast: the URLs are resolved once, only the tokens vary.

    Same values as reader_links(); a batch of a thousand readers skips two thousand
    URL resolutions.
    """

    purposes = {UNSUBSCRIBE_URL: "unsubscribe", PREFERENCES_URL: "preferences"}

    def __init__(self) -> None:
        # {placeholder: (the URL before the token, the URL after it)}
        self.around: dict[str, tuple[str, str]] = {
            marker: tuple(  # type: ignore[misc]
                absolute(reverse(f"newsletter:{purpose}", args=[_TOKEN_SLOT])).split(_TOKEN_SLOT)
            )
            for marker, purpose in self.purposes.items()
        }

    def tokens(self, subscriber: Subscriber) -> dict[str, str]:
        """Return {placeholder: the reader's token}, the only part of a link that varies."""
        return {
            marker: reader_tokens.make_token(subscriber, purpose)
            for marker, purpose in self.purposes.items()
        }

    def __call__(self, subscriber: Subscriber) -> dict[str, str]:
        return {
            marker: self.around[marker][0] + token + self.around[marker][1]
            for marker, token in self.tokens(subscriber).items()
        }


# --- Headers ----------------------------------------------------------------------------


def list_id(newsletter: Newsletter) -> str:
    return f'"{newsletter.name}" <{newsletter.slug}.{site_domain()}>'


def list_unsubscribe(url: str) -> dict[str, str]:
    """Return one reader's List-Unsubscribe (the ESP batch path sends it as a merge header)."""
    return {"List-Unsubscribe": f"<{url}>"}


def one_click_headers(*, newsletter: Newsletter, unsubscribe: str | None) -> dict[str, str]:
    """Return the List-Id and RFC 8058 one-click headers of an email to a subscribed reader.

    List-Unsubscribe with List-Unsubscribe-Post is one-click: the mailbox provider
    POSTs to the https URL, no page, cookie or login involved. With `unsubscribe`
    None the per-reader List-Unsubscribe is left out (the ESP batch path sends it as
    a merge header).
    """
    return {
        "List-Id": list_id(newsletter),
        **(list_unsubscribe(unsubscribe) if unsubscribe is not None else {}),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
