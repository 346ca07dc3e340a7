"""Read RSS 2.0, Atom and JSON Feed documents into plain entries.

feedparser reads RSS and Atom; JSON Feed (https://jsonfeed.org/version/1.1) is plain
JSON, read here. Every entry is checked on its own: a bad item becomes one error line
naming it and the rest still import; a feed that cannot be read at all raises
FeedError and nothing is imported.
"""

from __future__ import annotations

import calendar
import html
import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import nh3
import requests
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from articles.fetching import FetchRefused, fetch_url
from config.cleaning import clean_text

MAX_FEED_BYTES = 20 * 1024 * 1024
FETCH_TIMEOUT_SECONDS = 20
# A date past tomorrow is a typo or a clock gone wrong, one before 1990 a placeholder
# (the epoch, 1900): either would put the item in the wrong issue, or in none.
FUTURE_TOLERANCE = timedelta(days=1)
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)

_DATELINE = re.compile(
    r"^\s*([A-Z][A-Z .'-]+,\s+[A-Z][a-z]{2,8}\.?\s+\d{1,2}\s+\([^)]{2,40}\))\s+--"
)
_SECTION_SCHEMES = {"section", "category", "categories"}
_BODY_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "caption",
    "cite",
    "code",
    "em",
    "figcaption",
    "figure",
    "h2",
    "h3",
    "h4",
    "hr",
    "i",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "q",
    "small",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "u",
    "ul",
}
_BODY_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}


class FeedError(Exception):
    """The whole feed cannot be read: unreachable, too large or not a feed."""


class EntryError(ValueError):
    """One item of a feed is unusable; the message names what is wrong with it."""


# Whatever one item's odd data raises (a date out of range, a list where text belongs),
# it is that item's error line; the items after it are still read.
_ITEM_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError)


@dataclass(frozen=True)
class FeedImage:
    url: str
    width: int | None = None
    height: int | None = None
    size: int | None = None  # bytes, when the feed says


@dataclass(frozen=True)
class FeedEntry:
    guid: str
    title: str
    url: str
    published_at: datetime
    abstract: str
    body: str
    category: str | None
    keywords: tuple[str, ...]
    related_urls: tuple[str, ...]
    source: str
    dateline: str
    # Issue 14: the entry's own language (or the feed's), the feed's shared id for
    # the story's versions, and its alternates in other languages (hreflang, url).
    language: str = ""
    translation_key: str = ""
    alternates: tuple[tuple[str, str], ...] = ()
    image: FeedImage | None = None


@dataclass
class ParsedFeed:
    name: str
    title: str
    entries: list[FeedEntry] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def strip_control(value: str) -> str:
    """Return `value` without NUL and other control characters (tab and newlines stay).

    The one cleaner every outside input passes (config/cleaning.py).
    """
    return clean_text(str(value))


def sanitise_html(value: str) -> str:
    """Return `value` with scripts, event handlers and non-http links removed."""
    return nh3.clean(
        value,
        tags=_BODY_TAGS,
        attributes=_BODY_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    ).strip()


def html_to_text(value: str) -> str:
    """Return the readable text of an HTML fragment, whitespace folded."""
    text = nh3.clean(value, tags=set(), attributes={})
    return re.sub(r"\s+", " ", html.unescape(text)).strip()


def load_source(source: str) -> bytes:
    """Return the bytes of a feed given as an http(s) URL or a file path.

    URLs go through the SSRF guard of articles.fetching, like scheduled fetches.
    """
    if urlsplit(source).scheme in ("http", "https"):
        try:
            fetched = fetch_url(source, max_bytes=MAX_FEED_BYTES)
        except FetchRefused as exc:
            raise FeedError(f"{source}: refused: {exc}.") from None
        except requests.RequestException as exc:
            raise FeedError(f"{source}: cannot fetch the feed ({exc}).") from None
        if fetched.status >= 400 or fetched.body is None:
            raise FeedError(f"{source}: cannot fetch the feed (HTTP {fetched.status}).")
        return fetched.body
    path = Path(source)
    if not path.is_file():
        raise FeedError(f"{source}: no such file, and not an http(s) URL.")
    with path.open("rb") as handle:
        data = handle.read(MAX_FEED_BYTES + 1)
    if len(data) > MAX_FEED_BYTES:
        raise FeedError(f"{source}: the feed is larger than {MAX_FEED_BYTES // (1024 * 1024)} MB.")
    return data


def parse_feed(data: bytes, *, name: str) -> ParsedFeed:
    """Return the entries of an RSS, Atom or JSON feed; raise FeedError if it is none."""
    if data.lstrip()[:1] == b"{":
        return _parse_json_feed(data, name=name)
    return _parse_xml_feed(data, name=name)


def read_feed(source: str) -> ParsedFeed:
    return parse_feed(load_source(source), name=source)


def _parse_xml_feed(data: bytes, *, name: str) -> ParsedFeed:
    parsed = feedparser.parse(data, sanitize_html=False, resolve_relative_uris=True)
    if parsed.get("bozo") and not isinstance(
        parsed.get("bozo_exception"), feedparser.CharacterEncodingOverride
    ):
        raise FeedError(f"{name}: not a well-formed RSS or Atom feed ({parsed.bozo_exception}).")
    if not parsed.get("version"):
        raise FeedError(f"{name}: not an RSS, Atom or JSON feed.")
    feed_title = parsed.feed.get("title", "")
    result = ParsedFeed(name=name, title=feed_title)
    for index, item in enumerate(parsed.entries, start=1):
        try:
            entry = _entry_from_feedparser(item, feed_title=feed_title)
            result.entries.append(
                _with_languages(entry, item, feed_language=parsed.feed.get("language", ""))
            )
        except _ITEM_ERRORS as exc:
            result.errors.append(
                f"{name}: item {index} ({_label(item.get('title'), item.get('link'))}): {exc}"
            )
    return result


def _entry_from_feedparser(item: feedparser.FeedParserDict, *, feed_title: str) -> FeedEntry:
    stamp = item.get("published_parsed") or item.get("updated_parsed")
    if not stamp:
        raise EntryError("no valid publication date")
    published_at = datetime.fromtimestamp(calendar.timegm(stamp), tz=UTC)
    tags = [
        (
            str(tag.get("term") or tag.get("label") or "").strip(),
            str(tag.get("scheme") or "").strip().lower(),
        )
        for tag in item.get("tags", [])
    ]
    body = item["content"][0].get("value", "") if item.get("content") else ""
    source = item.get("source", {}).get("title", "") if item.get("source") else ""
    related = [
        link.get("href", "") for link in item.get("links", []) if link.get("rel") == "related"
    ]
    return _make_entry(
        image=_image_from_feedparser(item),
        guid=item.get("id") or item.get("link") or "",
        title=item.get("title", ""),
        url=item.get("link", ""),
        published_at=published_at,
        summary=item.get("summary", ""),
        body=body,
        tags=tags,
        related=related,
        source=source or feed_title,
    )


def _parse_json_feed(data: bytes, *, name: str) -> ParsedFeed:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FeedError(f"{name}: not valid JSON ({exc}).") from None
    if not isinstance(document, dict) or not str(document.get("version", "")).startswith(
        "https://jsonfeed.org/version/"
    ):
        raise FeedError(f"{name}: JSON without a jsonfeed.org version is not a JSON Feed.")
    items = document.get("items")
    if not isinstance(items, list):
        raise FeedError(f"{name}: a JSON Feed needs an 'items' list.")
    feed_title = str(document.get("title", ""))
    result = ParsedFeed(name=name, title=feed_title)
    for index, item in enumerate(items, start=1):
        try:
            if not isinstance(item, dict):
                raise EntryError("not a JSON object")
            entry = _entry_from_json(item, feed_title=feed_title)
            result.entries.append(
                _with_json_languages(entry, item, feed_language=document.get("language", ""))
            )
        except _ITEM_ERRORS as exc:
            label = _label(item.get("title"), item.get("url")) if isinstance(item, dict) else "'?'"
            result.errors.append(f"{name}: item {index} ({label}): {exc}")
    return result


def _entry_from_json(item: dict, *, feed_title: str) -> FeedEntry:
    stamp = item.get("date_published") or item.get("date_modified")
    published_at = parse_datetime(stamp) if isinstance(stamp, str) else None
    if published_at is None:
        raise EntryError("no valid date_published (RFC 3339)")
    if published_at.tzinfo is None:
        published_at = published_at.replace(tzinfo=UTC)
    extension = item.get("_belt_and_road") if isinstance(item.get("_belt_and_road"), dict) else {}
    tags = [(str(tag), "") for tag in item.get("tags", []) if isinstance(tag, str)]
    if extension.get("category"):
        tags.insert(0, (str(extension["category"]), "section"))
    related = [str(url) for url in extension.get("related", []) if isinstance(url, str)]
    body = item.get("content_html") or html.escape(str(item.get("content_text", "")))
    picture = item.get("image") or item.get("banner_image")
    return _make_entry(
        image=_image(picture) if isinstance(picture, str) else None,
        guid=str(item.get("id") or item.get("url") or ""),
        title=str(item.get("title", "")),
        url=str(item.get("url", "")),
        published_at=published_at.astimezone(UTC),
        summary=str(item.get("summary", "")),
        body=str(body),
        tags=tags,
        related=related,
        source=str(extension.get("source", "")) or feed_title,
    )


def _with_languages(entry: FeedEntry, item, *, feed_language: str) -> FeedEntry:
    """Add an RSS/Atom entry's language, shared story id and hreflang alternates.

    The language is the entry's xml:lang (feedparser reports it on the title) or
    dc:language, else the feed's <language>; the shared id is <brw:translationKey>.
    """
    language = (
        item.get("dc_language")
        or (item.get("title_detail") or {}).get("language")
        or feed_language
        or ""
    )
    alternates = tuple(
        (str(link.get("hreflang", "")), str(link.get("href", "")))
        for link in item.get("links", [])
        if link.get("rel") == "alternate"
        and link.get("hreflang")
        and _is_web_url(link.get("href", ""))
    )
    # feedparser's `link` is the last rel=alternate, which may be another language's:
    # the entry's own page is the alternate without an hreflang.
    own = next(
        (
            str(link.get("href", ""))
            for link in item.get("links", [])
            if link.get("rel") == "alternate"
            and not link.get("hreflang")
            and _is_web_url(link.get("href", ""))
        ),
        entry.url,
    )
    return replace(
        entry,
        url=own if len(own) <= 500 else entry.url,
        language=str(language)[:35],
        translation_key=str(item.get("brw_translationkey", "")).strip()[:200],
        alternates=alternates,
    )


def _with_json_languages(entry: FeedEntry, item: dict, *, feed_language: object) -> FeedEntry:
    """Add a JSON Feed item's language (item or feed `language`) and story links.

    `_belt_and_road.translation_key` is the shared story id; `_belt_and_road.translations`
    maps language codes to the URLs of the other versions.
    """
    extension = item.get("_belt_and_road") if isinstance(item.get("_belt_and_road"), dict) else {}
    language = item.get("language") or feed_language or ""
    translations = extension.get("translations")
    alternates = tuple(
        (str(code), str(url))
        for code, url in (translations.items() if isinstance(translations, dict) else [])
        if isinstance(url, str) and _is_web_url(url)
    )
    return replace(
        entry,
        language=str(language)[:35],
        translation_key=str(extension.get("translation_key") or "").strip()[:200],
        alternates=alternates,
    )


def _make_entry(
    *,
    guid: str,
    title: str,
    url: str,
    published_at: datetime,
    summary: str,
    body: str,
    tags: list[tuple[str, str]],
    related: list[str],
    source: str,
    image: FeedImage | None = None,
) -> FeedEntry:
    guid, title, url, summary, body, source = (
        strip_control(v) for v in (guid, title, url, summary, body, source)
    )
    tags = [(strip_control(term), strip_control(scheme)) for term, scheme in tags]
    related = [strip_control(u) for u in related]
    if published_at > timezone.now() + FUTURE_TOLERANCE:
        raise EntryError(f"dated {published_at:%Y-%m-%d %H:%M} UTC, more than a day in the future")
    if published_at < EARLIEST:
        raise EntryError(f"dated {published_at:%Y-%m-%d}, before 1990")
    title = html_to_text(title)
    if not title:
        raise EntryError("no title")
    if len(title) > 300:
        raise EntryError("title longer than 300 characters")
    if not _is_web_url(url):
        raise EntryError(f"link {url!r} is not an absolute http(s) URL")
    if len(url) > 500 or len(guid) > 500:
        raise EntryError("link or guid longer than 500 characters")
    body_html = sanitise_html(body)
    abstract = html_to_text(summary) or _first_words(html_to_text(body_html), 60)
    # The first tag marked as a section is the category; without one the first tag is.
    terms = [(term, scheme) for term, scheme in tags if term]
    section = next(
        (term for term, scheme in terms if scheme.rsplit("/", 1)[-1] in _SECTION_SCHEMES), None
    )
    if section is None and terms:
        section = terms[0][0]
    keywords = tuple(dict.fromkeys(term[:100] for term, _ in terms if term != section))
    match = _DATELINE.match(html_to_text(body_html))
    return FeedEntry(
        guid=guid.strip() or url,
        title=title,
        url=url,
        published_at=published_at,
        abstract=abstract,
        body=body_html,
        category=section[:100] if section else None,
        keywords=keywords,
        related_urls=tuple(u for u in related if _is_web_url(u)),
        source=html_to_text(source)[:200],
        dateline=match.group(1)[:200] if match else "",
        image=image,
    )


_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp")


def _number(value: object) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**31 else None


def _image(url: object, width: object = None, height: object = None, size: object = None):
    """Return a FeedImage for an absolute http(s) URL (never data: or a relative path)."""
    url = str(url or "").strip()
    if not _is_web_url(url) or len(url) > 500:
        return None
    return FeedImage(url=url, width=_number(width), height=_number(height), size=_number(size))


def _image_from_feedparser(item: feedparser.FeedParserDict) -> FeedImage | None:
    """Return the item's picture: media:content, then media:thumbnail, then an image enclosure."""
    candidates = []
    for media in item.get("media_content", []):
        kind = str(media.get("medium") or media.get("type") or "")
        url = str(media.get("url") or "")
        if kind == "image" or kind.startswith("image/") or url.lower().endswith(_IMAGE_SUFFIXES):
            candidates.append((url, media.get("width"), media.get("height"), media.get("filesize")))
    for thumb in item.get("media_thumbnail", []):
        candidates.append((thumb.get("url"), thumb.get("width"), thumb.get("height"), None))
    for enclosure in item.get("enclosures", []):
        if str(enclosure.get("type", "")).startswith("image/"):
            candidates.append((enclosure.get("href"), None, None, enclosure.get("length")))
    for url, width, height, size in candidates:
        if image := _image(url, width, height, size):
            return image
    return None


def _is_web_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _first_words(text: str, count: int) -> str:
    words = text.split()
    return " ".join(words[:count]) + (" …" if len(words) > count else "")


def _label(title: object, link: object) -> str:
    return repr(strip_control(str(title or link or "untitled"))[:80])
