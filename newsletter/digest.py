"""The weekly digest: an issue's sections, per-reader variants and their rendering.

A reader receives the sections of the categories they chose (all of them when they
chose none). Readers who choose the same sections share a variant, which is rendered
once; their personal links are placeholders that each message fills in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import markdown
from django.conf import settings
from django.db.models import F, Prefetch
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from articles.feeds import sanitise_html
from articles.models import Article, Category
from newsletter.emails import RenderedEmail, render_email
from newsletter.models import Issue, IssueItem
from newsletter.plaintext import readable_text
from newsletter.tokens import issue_preview_token

# Per-reader values are left as these ASCII markers in the rendered variant and
# substituted per message; they survive template escaping, CSS inlining and MIME
# encoding unchanged, and the ESP batch path maps them to its own merge fields.
UNSUBSCRIBE_URL = "%%UNSUBSCRIBE_URL%%"
PREFERENCES_URL = "%%PREFERENCES_URL%%"
PLACEHOLDERS = (UNSUBSCRIBE_URL, PREFERENCES_URL)

# An issue is on the public archive from the moment it starts sending.
PUBLIC_STATUSES = (Issue.Status.SENDING, Issue.Status.SENT)
UNCATEGORISED = 0
RELATED_LIMIT = 3
# Keyword matches are looked for among this many of the newest (article, keyword) pairs,
# so a keyword on thousands of articles does not make every digest read them all.
RELATED_CANDIDATE_ROWS = 5000

Variant = tuple[int, ...]


# The card is 600 px with 28 px padding each side; the lead picture fills the rest.
IMAGE_WIDTH = 544
# A feed that gives no size (JSON Feed never does) gets a 16:9 box the picture fills.
IMAGE_DEFAULT_RATIO = 9 / 16


@dataclass(frozen=True)
class LeadImage:
    """A section's lead picture as the digest shows it, linked from the portal, never inlined."""

    url: str
    alt: str
    width: int
    height: int
    sized_by_feed: bool
    size: int | None  # bytes, when the feed said

    @classmethod
    def of(cls, article: Article) -> LeadImage | None:
        if not article.image_url:
            return None
        known = bool(article.image_width and article.image_height)
        ratio = article.image_height / article.image_width if known else IMAGE_DEFAULT_RATIO
        width = min(IMAGE_WIDTH, article.image_width or IMAGE_WIDTH)
        return cls(
            url=article.image_url,
            alt=article.image_alt or article.title,
            width=width,
            height=round(width * ratio),
            sized_by_feed=known,
            size=article.image_bytes,
        )


@dataclass
class DigestItem:
    article: Article
    abstract: str
    url: str
    keywords: list[str]
    related: list[tuple[str, str]]  # (title, url)
    pinned: bool = False
    image: LeadImage | None = None  # only a section's first story shows its picture


@dataclass
class DigestSection:
    key: int
    title: str
    items: list[DigestItem] = field(default_factory=list)
    more: int = 0  # articles past the email's cap, read on the issue's web page
    more_url: str = ""

    @property
    def anchor(self) -> str:
        return f"section-{self.key}"


@dataclass
class Digest:
    issue: Issue
    sections: list[DigestSection]

    @property
    def section_keys(self) -> tuple[int, ...]:
        return tuple(section.key for section in self.sections)

    def variant_for(self, category_ids: Iterable[int]) -> Variant:
        """Return the sections a reader with these chosen categories receives.

        No choice means everything; uncategorised news goes only to those readers.
        """
        chosen = set(category_ids)
        if not chosen:
            return self.section_keys
        return tuple(key for key in self.section_keys if key in chosen)

    def sections_for(self, variant: Variant) -> list[DigestSection]:
        keys = set(variant)
        return [section for section in self.sections if section.key in keys]

    def image_bytes(self, variant: Variant) -> int:
        """Return the bytes of the pictures a reader of `variant` downloads, as feeds state them.

        Part of the digest's size budget beside its HTML; a picture of unknown size counts 0.
        """
        return sum(
            section.items[0].image.size or 0
            for section in self.sections_for(variant)
            if section.items and section.items[0].image
        )

    @property
    def article_count(self) -> int:
        return sum(len(section.items) for section in self.sections)


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


def absolute(path: str) -> str:
    return settings.SITE_URL + path


def issue_web_url(issue: Issue) -> str:
    return absolute(reverse("newsletter:archive-issue", args=[issue.number]))


def issue_preview_url(issue: Issue) -> str:
    """Return the signed web preview of an issue in any status (for test copies)."""
    return absolute(reverse("newsletter:issue-preview", args=[issue_preview_token(issue)]))


def editor_note_html(issue: Issue) -> SafeString:
    """Return the editor's Markdown note as sanitised HTML."""
    if not issue.editor_note.strip():
        return mark_safe("")
    return mark_safe(sanitise_html(markdown.markdown(issue.editor_note)))  # noqa: S308 - nh3-sanitised


def editor_note_text(issue: Issue) -> str:
    """Return the editor's note as the plain-text part shows it: text, not Markdown."""
    return readable_text(editor_note_html(issue))


def _related_by_keywords(
    wanted: dict[int, set[int]], *, exclude: set[int], until
) -> dict[int, list[Article]]:
    """Return, for each article id in `wanted` (id -> its keyword ids), related articles.

    Up to RELATED_LIMIT published articles (not in `exclude`, published by `until`)
    sharing the most keywords, the newest first among equals. Two queries in all.
    """
    if not wanted:
        return {}
    keyword_ids = set().union(*wanted.values())
    pairs = (
        Article.keywords.through.objects.filter(
            keyword_id__in=keyword_ids,
            article__status=Article.Status.PUBLISHED,
            article__published_at__lte=until,
        )
        .exclude(article_id__in=exclude)
        .order_by("-article__published_at", "-article_id")
        .values_list("article_id", "keyword_id")[:RELATED_CANDIDATE_ROWS]
    )
    candidates: dict[int, set[int]] = {}  # insertion order: newest first
    for article_id, keyword_id in pairs:
        candidates.setdefault(article_id, set()).add(keyword_id)
    recency = {article_id: rank for rank, article_id in enumerate(candidates)}
    chosen: dict[int, list[int]] = {}
    for article_id, keywords in wanted.items():
        scored = [
            (-len(keywords & theirs), recency[other])
            for other, theirs in candidates.items()
            if keywords & theirs
        ]
        ranked = sorted(scored)[:RELATED_LIMIT]
        order = list(candidates)
        chosen[article_id] = [order[rank] for _, rank in ranked]
    found = Article.objects.in_bulk({pk for ids in chosen.values() for pk in ids})
    return {
        article_id: [found[pk] for pk in ids if pk in found] for article_id, ids in chosen.items()
    }


def digest_build(
    issue: Issue, *, include_removed: bool = False, utm_medium: str | None = None
) -> Digest:
    """Return the issue's sections in order, with a fixed number of queries.

    Each article lists up to three related articles: the editor's choice when there
    is one, else those sharing the most keywords with it. Related reading adds, never
    repeats: an article this issue carries is never listed, and when the editor's
    choice is all in the issue, keyword matches stand in. A category not yet turned
    on has no section of its own: its articles are under "More news".
    """
    items = (
        IssueItem.objects.filter(issue=issue)
        .select_related("article", "section")
        .prefetch_related(
            "article__keywords",
            Prefetch(
                "article__related", queryset=Article.objects.filter(status=Article.Status.PUBLISHED)
            ),
        )
        .order_by("-pinned", "position", "id")
    )
    if not include_removed:
        items = items.filter(removed=False)
    items = list(items)
    in_issue = {item.article_id for item in items}
    chosen = {
        item.article_id: [a for a in item.article.related.all() if a.pk not in in_issue][
            :RELATED_LIMIT
        ]
        for item in items
    }
    by_keywords = _related_by_keywords(
        {
            item.article_id: {k.pk for k in item.article.keywords.all()}
            for item in items
            if not chosen[item.article_id] and item.article.keywords.all()
        },
        exclude=in_issue,
        until=issue.window_end,
    )
    by_key: dict[int, DigestSection] = {}
    order: dict[int, tuple[int, str]] = {}
    for item in items:
        related = chosen[item.article_id] or by_keywords.get(item.article_id, [])
        section: Category | None = item.section if item.section and item.section.enabled else None
        key = section.pk if section else UNCATEGORISED
        if key not in by_key:
            by_key[key] = DigestSection(key=key, title=section.name if section else "More news")
            order[key] = (section.position, section.name) if section else (10**9, "")
        by_key[key].items.append(
            DigestItem(
                article=item.article,
                abstract=item.abstract,
                url=tracked_url(item.article.url, issue, medium=utm_medium),
                keywords=[k.name for k in item.article.keywords.all()],
                related=[(a.title, tracked_url(a.url, issue, medium=utm_medium)) for a in related],
                pinned=item.pinned,
            )
        )
    sections = [by_key[key] for key in sorted(by_key, key=lambda k: order[k])]
    for section in sections:
        section.items[0].image = LeadImage.of(section.items[0].article)
    return Digest(issue=issue, sections=sections)


def week_label(issue: Issue) -> str:
    year, week = issue.week.split("-W")
    return f"Week {int(week)}, {year}"


def _titles(digest: Digest, variant: Variant) -> list[str]:
    return [
        item.article.title for section in digest.sections_for(variant) for item in section.items
    ]


def preheader(digest: Digest, variant: Variant) -> str:
    """Return the editors' preheader, else the first stories' titles of this variant."""
    if digest.issue.preheader.strip():
        return digest.issue.preheader.strip()
    return " · ".join(_titles(digest, variant)[:3])[:180]


def headline(digest: Digest, variant: Variant | None = None) -> str:
    """Return the editors' headline, else the lead story's title with name and number.

    Without `variant`, the lead of the whole issue (the archive and RSS show that).
    """
    titles = _titles(digest, digest.section_keys if variant is None else variant)
    return issue_headline(digest.issue, lead_title=titles[0] if titles else None)


def issue_headline(issue: Issue, *, lead_title: str | None) -> str:
    """Return the editors' headline, else `lead_title` with the newsletter's name and number."""
    if issue.headline.strip():
        return issue.headline.strip()
    masthead = f"{issue.newsletter.name} No. {issue.number}"
    return f"{lead_title} · {masthead}" if lead_title else f"{masthead} · {week_label(issue)}"


# Items as the digest shows them: sections by position ("More news" last), pinned first.
DIGEST_ORDER = (
    F("section__position").asc(nulls_last=True),
    "section__name",
    "-pinned",
    "position",
    "id",
)


def issue_items_in_order(issue: Issue):
    """Return the issue's items in the digest's order, the lead story first."""
    return IssueItem.objects.filter(issue=issue, removed=False).order_by(*DIGEST_ORDER)


def section_cap(issue: Issue) -> int:
    return issue.section_cap or issue.newsletter.section_cap


def capped_sections(digest: Digest, variant: Variant) -> list[DigestSection]:
    """Return the variant's sections as the email shows them: at most the cap of each,
    the rest counted and linked to the section on the issue's web page."""
    cap = section_cap(digest.issue)
    web_url = issue_web_url(digest.issue)
    return [
        dataclasses.replace(
            section,
            items=section.items[:cap],
            more=max(len(section.items) - cap, 0),
            more_url=f"{web_url}#{section.anchor}",
        )
        for section in digest.sections_for(variant)
    ]


def digest_context(
    digest: Digest, variant: Variant, *, test: bool = False, capped: bool = False
) -> dict:
    """Return what the digest's templates show; `capped` for an email, whole for the web."""
    issue = digest.issue
    return {
        "newsletter": issue.newsletter,
        "issue": issue,
        "week_label": week_label(issue),
        "subject": headline(digest, variant),
        "sections": capped_sections(digest, variant) if capped else digest.sections_for(variant),
        "editor_note": editor_note_html(issue),
        "editor_note_text": editor_note_text(issue),
        "preheader": preheader(digest, variant),
        # A test copy's issue is not public yet: its "view in your browser" opens a
        # signed preview page instead of the archive page, which would be a 404.
        "web_url": issue_web_url(issue)
        if issue.status in PUBLIC_STATUSES and not test
        else issue_preview_url(issue),
        "archive_url": absolute(reverse("newsletter:archive")),
        "unsubscribe_url": UNSUBSCRIBE_URL,
        "preferences_url": PREFERENCES_URL,
        "test": test,
    }


def digest_render(digest: Digest, variant: Variant, *, test: bool = False) -> RenderedEmail:
    """Render one variant of the digest, per-reader links left as placeholders.

    Dates are the newsroom's: rendered in the newsletter's zone, not the worker's.
    """
    with timezone.override(digest.issue.newsletter.tz):
        return render_email("digest", digest_context(digest, variant, test=test, capped=True))


def fill_placeholders(text: str, values: dict[str, str]) -> str:
    for marker, value in values.items():
        text = text.replace(marker, value)
    return text
