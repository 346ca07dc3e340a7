"""Writes to the article store: feed import."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import DatabaseError, models, transaction
from django.utils.text import slugify

from articles.feeds import FeedEntry, ParsedFeed, read_feed
from articles.models import Article, Category, Keyword


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0  # only items whose article really changed
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)  # one line per refused item

    @property
    def imported(self) -> int:
        return self.created + self.updated + self.unchanged


def _category(name: str) -> Category:
    slug = slugify(name)[:100] or "general"
    category = Category.objects.filter(slug=slug).first()
    if category is None:
        position = (
            Category.objects.order_by("-position").values_list("position", flat=True).first() or 0
        ) + 1
        # A new category is the newsroom's to offer: off (its articles under "More news")
        # until an editor turns it on.
        category = Category.objects.create(
            name=name, slug=slug, position=position, enabled=False
        )
    return category


def _keywords(names: tuple[str, ...]) -> list[Keyword]:
    result: dict[str, Keyword] = {}
    for name in names:
        slug = slugify(name)[:100]
        if slug and slug not in result:
            result[slug] = Keyword.objects.get_or_create(slug=slug, defaults={"name": name})[0]
    return list(result.values())


class Saved(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


def _has_field(model: type[models.Model], name: str) -> bool:
    return any(f.name == name for f in model._meta.get_fields())


def article_save_entry(
    *,
    entry: FeedEntry,
    language: str | None = None,
    default_category: Category | None = None,
) -> tuple[Article, Saved]:
    """Create or update the article for one feed entry, keyed on its GUID.

    An entry identical to its article changes nothing (not even updated_at), so a
    feed fetched every quarter hour reports only what really changed. `language`
    (the feed source's) is stored where articles have a language; an entry without
    a category gets `default_category`.
    """
    category = _category(entry.category) if entry.category else default_category
    values = {
        "title": entry.title,
        "slug": slugify(entry.title)[:300] or "article",
        "url": entry.url,
        "source": entry.source,
        "dateline": entry.dateline,
        "published_at": entry.published_at,
        "abstract": entry.abstract,
        "body": entry.body,
        "category": category,
    }
    if language and _has_field(Article, "language"):
        values["language"] = language
    keywords = _keywords(entry.keywords)
    with transaction.atomic():
        article = Article.objects.select_for_update().filter(feed_guid=entry.guid).first()
        if article is None:
            article = Article.objects.create(
                feed_guid=entry.guid, status=Article.Status.PUBLISHED, **values
            )
            article.keywords.set(keywords)
            return article, Saved.CREATED
        changed = [name for name, value in values.items() if getattr(article, name) != value]
        same_keywords = {k.pk for k in article.keywords.all()} == {k.pk for k in keywords}
        if not changed and same_keywords:
            return article, Saved.UNCHANGED
        for name in changed:
            setattr(article, name, values[name])
        article.save()
        article.keywords.set(keywords)
    return article, Saved.UPDATED


def articles_import(
    *,
    feed: ParsedFeed,
    on_progress: Callable[[int, int, FeedEntry], None] | None = None,
    language: str | None = None,
    default_category: Category | None = None,
) -> ImportResult:
    """Save every good entry of a parsed feed; its bad items are reported, not saved.

    Each entry is saved in its own transaction, so one failing entry (one the
    database refuses) is one error line and the others are still saved. Related
    reading is linked once all entries exist, so an entry may point to one that
    comes later in the feed.
    """
    result = ImportResult(errors=list(feed.errors))
    saved: list[tuple[Article, FeedEntry]] = []
    total = len(feed.entries)
    for index, entry in enumerate(feed.entries, start=1):
        try:
            article, outcome = article_save_entry(
                entry=entry, language=language, default_category=default_category
            )
        except (DatabaseError, ValidationError, ValueError) as exc:
            result.errors.append(
                f"{feed.name}: {entry.title[:80]!r} ({entry.url}): not saved ({exc})"
            )
            continue
        saved.append((article, entry))
        setattr(result, outcome.value, getattr(result, outcome.value) + 1)
        if on_progress:
            on_progress(index, total, entry)
    for article, entry in saved:
        related = set(
            Article.objects.filter(url__in=entry.related_urls)
            .exclude(pk=article.pk)
            .values_list("pk", flat=True)
        )
        if related != {a.pk for a in article.related.all()}:
            article.related.set(related)
    return result


def articles_import_feed(
    *, source: str, on_progress: Callable[[int, int, FeedEntry], None] | None = None
) -> ImportResult:
    """Import a feed from a URL or a file; raise FeedError if it cannot be read at all."""
    return articles_import(feed=read_feed(source), on_progress=on_progress)
