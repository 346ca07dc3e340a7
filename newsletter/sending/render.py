"""Render: which variant each claimed reader gets, each variant rendered once.

A variant is (language, sections): readers of one edition who chose the same
sections share one render (issue 14). Rendered variants (and what a way out builds
from one, such as the SMTP path's serialised MIME) are kept per worker process
across batches, keyed by a fingerprint of everything they show: a batch of the same
issue reuses them, any change to the issue's content makes new ones.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from django.conf import settings

from articles.languages import reader_language
from newsletter.digest import Digest, Variant, digest_render
from newsletter.emails import HTML_LINE_BYTES, RenderedEmail, compact_html
from newsletter.models import Subscriber
from newsletter.sending.claim import Row

# The label of a variant is what Delivery.variant records.
EditionVariant = tuple[str, Variant]

_CACHE: OrderedDict[tuple, object] = OrderedDict()
_CACHE_SIZE = 128  # issue 14: twice the variants with two languages

T = TypeVar("T")


def cached(key: tuple, make: Callable[[], T]) -> T:
    """Return what `make` builds for `key`, built once per worker process (LRU)."""
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]  # type: ignore[return-value]
    value = _CACHE[key] = make()
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return value


_ISSUE_SHOWN = (
    "pk",
    "number",
    "title",
    "week",
    "window_start",
    "window_end",
    "editor_note",
    "utm_source",
    "utm_medium",
    "utm_campaign",
)


def fingerprint(digest: Digest) -> str:
    """Return a hash of everything an edition's renders show."""
    issue, newsletter = digest.issue, digest.issue.newsletter
    data = (
        settings.SITE_URL,
        digest.language,  # issue 14: each edition's words are its own
        digest.text,
        # What the templates show of the issue (not its counters, which every batch moves).
        [getattr(issue, name) for name in _ISSUE_SHOWN],
        [getattr(newsletter, f.attname) for f in newsletter._meta.concrete_fields],
        [
            (
                section.key,
                section.title,
                [
                    (
                        item.article.pk,
                        item.article.title,
                        item.article.source,
                        item.article.published_at,
                        item.abstract,
                        item.url,
                        item.keywords,
                        item.related,
                        item.pinned,
                        item.original_language,
                    )
                    for item in section.items
                ],
            )
            for section in digest.sections
        ],
    )
    return hashlib.sha256(repr(data).encode()).hexdigest()


def variant_label(key: EditionVariant) -> str:
    language, variant = key
    return f"{language}:{','.join(map(str, variant))}"


def variant_render(edition: Digest, variant: Variant) -> RenderedEmail:
    """Render one variant as it is sent: its HTML on lines SMTP takes whole."""
    rendered = digest_render(edition, variant)
    return replace(rendered, html=compact_html(rendered.html, line_bytes=HTML_LINE_BYTES))


@dataclass(frozen=True)
class RenderedVariant:
    """One variant of an issue, rendered: what every way out sends."""

    rendered: RenderedEmail
    key: tuple  # (fingerprint, variant): what a way out keys its own per-variant work by


class Renders:
    """The batch's variants, each rendered once (or taken from the process's cache)."""

    def __init__(self, digest: Digest) -> None:
        self.digest = digest
        self.fingerprints: dict[str, str] = {}

    def __call__(self, key: EditionVariant) -> RenderedVariant:
        language = key[0]
        edition = self.digest.edition(language)
        if language not in self.fingerprints:
            self.fingerprints[language] = fingerprint(edition)
        full_key = (self.fingerprints[language], key)
        return RenderedVariant(
            cached(full_key, lambda: variant_render(edition, key[1])), key=full_key
        )


@dataclass
class Plan:
    """What a claimed batch does with each row."""

    to_send: dict[EditionVariant, list[Row]]
    skipped: dict[int, str]  # row id -> reason
    recovered: dict[int, str]  # row id -> ESP message id

    def variants(self) -> dict[int, str]:
        """Return {row id: the label of its variant} for the rows to send."""
        return {row.pk: variant_label(key) for key, rows in self.to_send.items() for row in rows}


def variants_plan(
    rows: list[Row],
    *,
    digest: Digest,
    chosen: dict[int, list[int]],
    recovered: dict[int, str],
    now: datetime,
) -> Plan:
    """Re-check each reader at send time and pick the variant they get.

    A reader who left or paused since the snapshot, or none of whose sections is in
    the issue, is skipped with the reason; rows a dead claim had sent are left out.
    """
    to_send: dict[EditionVariant, list[Row]] = defaultdict(list)
    skipped: dict[int, str] = {}
    for row in rows:
        if row.pk in recovered:
            continue
        reader = row.subscriber
        if reader.status != Subscriber.Status.ACTIVE:
            skipped[row.pk] = f"reader is {reader.status} at send time"
        elif reader.paused_until and reader.paused_until > now:
            skipped[row.pk] = "reader paused at send time"
        else:
            edition = digest.edition(reader_language(reader.language))
            variant = edition.variant_for(chosen[reader.pk])
            if variant:
                to_send[(edition.language, variant)].append(row)
            else:
                skipped[row.pk] = "none of the reader's sections is in this issue"
    return Plan(to_send=dict(to_send), skipped=skipped, recovered=recovered)
