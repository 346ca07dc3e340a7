"""Writes to the article store: feed import."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from articles.feeds import FeedEntry, ParsedFeed, read_feed
from articles.languages import language_match
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


def entry_language(*, entry: FeedEntry, source_language: str | None) -> str:
    """Return the language of an entry: its own field first, then its source's, then the default.

    An explicit language in the entry wins over the feed source's (a Chinese feed may
    carry an English story); a code no configured language matches is kept as given,
    so the article stays out of every edition instead of landing in the wrong one.
    """
    for code in (entry.language, source_language):
        if code:
            return language_match(code) or code.strip().replace("_", "-").lower()[:10]
    return settings.LANGUAGE_CODE


def article_save_entry(*, entry: FeedEntry, language: str | None = None) -> tuple[Article, bool]:
    """Create or update the article for one feed entry, keyed on its GUID.

    `language` is the feed source's language (issue 10's FeedSource passes it).
    """
    values = {
        "language": entry_language(entry=entry, source_language=language),
        "title": entry.title,
        "slug": slugify(entry.title)[:300] or "article",
        "url": entry.url,
        "source": entry.source,
        "dateline": entry.dateline,
        "published_at": entry.published_at,
        "abstract": entry.abstract,
        "body": entry.body,
        "category": _category(entry.category) if entry.category else None,
    }
    if entry.translation_key:
        values["translation_key"] = entry.translation_key
    with transaction.atomic():
        article, created = Article.objects.update_or_create(
            feed_guid=entry.guid,
            defaults=values,
            create_defaults={**values, "status": Article.Status.PUBLISHED},
        )
        article.keywords.set(_keywords(entry.keywords))
    return article, created


def translation_root(*, article: Article, original: Article) -> Article:
    """Return the original `article` joins when linked to `original`; raise if it cannot.

    A link is refused when it would give the story two versions in one language.
    """
    root = original.translation_of or original
    if root.pk == article.pk:
        return root
    versions = Article.objects.filter(Q(pk=root.pk) | Q(translation_of=root))
    if article.pk:
        versions = versions.exclude(pk=article.pk)
    clash = versions.filter(language=article.language).first()
    if clash is not None:
        raise ValidationError(
            _("“%(title)s” is already this story's %(language)s version; unlink it first."),
            params={"title": clash.title, "language": article.language},
        )
    return root


def article_link_translation(*, article: Article, original: Article) -> Article:
    """Make `article` a version of `original`'s story; return the story's original.

    Stories stay one level deep: linking to a translation links to its original,
    and the article's own translations move along. Two versions of one story in
    one language would leave an edition not knowing which to send, so that is refused.
    """
    root = translation_root(article=article, original=original)
    if root.pk == article.pk:
        return root
    with transaction.atomic():
        Article.objects.filter(translation_of=article).update(translation_of=root)
        Article.objects.filter(pk=article.pk).update(translation_of=root)
        article.translation_of = root
    return root


def _original_first(article: Article) -> tuple:
    # The default language's version is the original (editors curate in it), else the
    # first published.
    return (article.language != settings.LANGUAGE_CODE, article.published_at, article.pk)


def articles_link_stories(*, saved: list[tuple[Article, FeedEntry]]) -> int:
    """Link the versions of each story the feeds name; return how many links were made.

    A shared `translation_key` joins every article carrying it; an hreflang alternate
    joins the article at that URL. The default language's version is the original. A link that
    would put two versions in one language is skipped, never forced.
    """
    linked = 0
    for article, entry in saved:
        article.refresh_from_db(fields=["translation_of"])
        others: list[Article] = []
        if entry.translation_key:
            others += Article.objects.filter(translation_key=entry.translation_key).exclude(
                pk=article.pk
            )
        urls = [url for _code, url in entry.alternates]
        if urls:
            others += Article.objects.filter(url__in=urls).exclude(pk=article.pk)
        for other in sorted(others, key=_original_first):
            if other.story_id == article.story_id:
                continue
            first, second = sorted([article, other], key=_original_first)
            try:
                article_link_translation(article=second, original=first)
            except ValidationError:
                continue
            article.refresh_from_db(fields=["translation_of"])
            linked += 1
    return linked


def articles_import(
    *,
    feed: ParsedFeed,
    on_progress: Callable[[int, int, FeedEntry], None] | None = None,
    language: str | None = None,
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
        article, created = article_save_entry(entry=entry, language=language)
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
    articles_link_stories(saved=saved)
    return result


def articles_import_feed(
    *,
    source: str,
    on_progress: Callable[[int, int, FeedEntry], None] | None = None,
    language: str | None = None,
) -> ImportResult:
    """Import a feed from a URL or a file; raise FeedError if it cannot be read at all.

    `language` is the feed source's language; an entry's own language field wins.
    """
    return articles_import(feed=read_feed(source), on_progress=on_progress, language=language)
