"""Writes to the article store: feed import."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils.text import slugify

from articles.feeds import FeedEntry, ParsedFeed, read_feed
from articles.models import Article, Category, Keyword


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return self.created + self.updated


def _category(name: str) -> Category:
    slug = slugify(name)[:100] or "general"
    category = Category.objects.filter(slug=slug).first()
    if category is None:
        position = (
            Category.objects.order_by("-position").values_list("position", flat=True).first() or 0
        ) + 1
        category = Category.objects.create(name=name, slug=slug, position=position)
    return category


def _keywords(names: tuple[str, ...]) -> list[Keyword]:
    result: dict[str, Keyword] = {}
    for name in names:
        slug = slugify(name)[:100]
        if slug and slug not in result:
            result[slug] = Keyword.objects.get_or_create(slug=slug, defaults={"name": name})[0]
    return list(result.values())


def article_save_entry(*, entry: FeedEntry) -> tuple[Article, bool]:
    """Create or update the article for one feed entry, keyed on its GUID."""
    values = {
        "title": entry.title,
        "slug": slugify(entry.title)[:300] or "article",
        "url": entry.url,
        "source": entry.source,
        "dateline": entry.dateline,
        "published_at": entry.published_at,
        "abstract": entry.abstract,
        "body": entry.body,
        "category": _category(entry.category) if entry.category else None,
        "image_url": entry.image.url if entry.image else "",
        "image_width": entry.image.width if entry.image else None,
        "image_height": entry.image.height if entry.image else None,
        "image_bytes": entry.image.size if entry.image else None,
    }
    with transaction.atomic():
        article, created = Article.objects.update_or_create(
            feed_guid=entry.guid,
            defaults=values,
            create_defaults={**values, "status": Article.Status.PUBLISHED},
        )
        article.keywords.set(_keywords(entry.keywords))
    return article, created


def articles_import(
    *, feed: ParsedFeed, on_progress: Callable[[int, int, FeedEntry], None] | None = None
) -> ImportResult:
    """Save every good entry of a parsed feed; its bad items are reported, not saved.

    Each entry is saved in its own transaction, so one failing entry leaves the
    others in place. Related reading is linked once all entries exist, so an entry
    may point to one that comes later in the feed.
    """
    result = ImportResult(errors=list(feed.errors))
    saved: list[tuple[Article, FeedEntry]] = []
    total = len(feed.entries)
    for index, entry in enumerate(feed.entries, start=1):
        article, created = article_save_entry(entry=entry)
        saved.append((article, entry))
        if created:
            result.created += 1
        else:
            result.updated += 1
        if on_progress:
            on_progress(index, total, entry)
    for article, entry in saved:
        if entry.related_urls:
            related = Article.objects.filter(url__in=entry.related_urls).exclude(pk=article.pk)
            article.related.set(related)
    return result


def articles_import_feed(
    *, source: str, on_progress: Callable[[int, int, FeedEntry], None] | None = None
) -> ImportResult:
    """Import a feed from a URL or a file; raise FeedError if it cannot be read at all."""
    return articles_import(feed=read_feed(source), on_progress=on_progress)
