"""Writes to the article store: feed import."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from articles.feeds import MAX_FEED_BYTES, FeedEntry, FeedError, ParsedFeed, parse_feed, read_feed
from articles.fetching import FetchRefused, fetch_url
from articles.languages import language_match
from articles.models import Article, Category, FeedFetch, FeedSource, Keyword


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
        category = Category.objects.create(name=name, slug=slug, position=position, enabled=False)
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


class Saved(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


def article_save_entry(
    *,
    entry: FeedEntry,
    language: str | None = None,
    default_category: Category | None = None,
) -> tuple[Article, Saved]:
    """Create or update the article for one feed entry, keyed on its GUID.

    An entry identical to its article changes nothing (not even updated_at), so a
    feed fetched every quarter hour reports only what really changed. The language is
    the entry's own, else `language` (the feed source's), else the default (issue 14);
    an entry without a category gets `default_category`.
    """
    category = _category(entry.category) if entry.category else default_category
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
        "category": category,
        "image_url": entry.image.url if entry.image else "",
        "image_width": entry.image.width if entry.image else None,
        "image_height": entry.image.height if entry.image else None,
        "image_bytes": entry.image.size if entry.image else None,
    }
    if entry.translation_key:
        values["translation_key"] = entry.translation_key
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


class SourceError(Exception):
    """A feed source's URL cannot be used; the message says why."""


def feed_file_path(url: str) -> Path:
    """Return the file a "file:NAME" source reads: inside FEED_FILE_DIR, or SourceError.

    Only names inside the one directory an operator named are readable, so a source
    cannot read settings, keys or /etc through "file:../../…" or a symlink.
    """
    if not settings.FEED_FILE_DIR:
        raise SourceError("file sources are off: FEED_FILE_DIR is empty")
    root = Path(settings.FEED_FILE_DIR).resolve()
    path = (root / url.removeprefix("file:").lstrip("/")).resolve()
    if not path.is_relative_to(root) or path == root:
        raise SourceError(f"{url!r} is outside FEED_FILE_DIR ({root})")
    if not path.is_file():
        raise SourceError(f"no file {path.name!r} in FEED_FILE_DIR ({root})")
    return path


def feed_source_check_url(url: str) -> None:
    """Raise SourceError unless `url` is an http(s) URL or a file inside FEED_FILE_DIR."""
    if url.startswith("file:"):
        feed_file_path(url)
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SourceError(f"{url!r}: a feed URL starts with http:// or https://")


def feed_source_fetch(*, source: FeedSource, now: datetime | None = None) -> FeedFetch:
    """Fetch one source, import what is new or changed, and record the fetch.

    An unchanged feed answers 304 to the conditional GET and imports nothing. Any
    failure — refused address, timeout, HTTP error, not a feed — is recorded on the
    fetch row with a clear message; nothing is imported from a feed that failed.
    """
    now = now or timezone.now()
    fetch = FeedFetch(source=source, at=now)
    try:
        data, validators = _feed_source_read(source, fetch)
        if data is not None:
            result = articles_import(
                feed=parse_feed(data, name=source.name),
                language=source.language,
                default_category=source.default_category,
            )
            fetch.new, fetch.updated, fetch.refused = (
                result.created,
                result.updated,
                len(result.errors),
            )
            fetch.refused_items = "\n".join(result.errors)
            source.etag, source.last_modified = validators
            source.save(update_fields=["etag", "last_modified"])
    except (SourceError, FeedError, FetchRefused) as exc:
        fetch.error = str(exc)
    except requests.RequestException as exc:
        fetch.error = f"cannot fetch the feed: {exc}"
    fetch.save()
    return fetch


def _feed_source_read(source: FeedSource, fetch: FeedFetch) -> tuple[bytes | None, tuple[str, str]]:
    """Return the feed's bytes (None when unchanged since the last fetch) and validators."""
    if source.url.startswith("file:"):
        with feed_file_path(source.url).open("rb") as handle:
            data = handle.read(MAX_FEED_BYTES + 1)
        if len(data) > MAX_FEED_BYTES:
            raise SourceError(f"the file is over the {MAX_FEED_BYTES:,} byte cap")
        return data, ("", "")
    feed_source_check_url(source.url)
    fetched = fetch_url(
        source.url, etag=source.etag, last_modified=source.last_modified, max_bytes=MAX_FEED_BYTES
    )
    fetch.status = fetched.status
    if fetched.status == 304:
        return None, (source.etag, source.last_modified)
    if fetched.status >= 400 or fetched.body is None:
        raise SourceError(f"the server answered HTTP {fetched.status}")
    return fetched.body, (fetched.etag, fetched.last_modified)
