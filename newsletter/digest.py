"""The weekly digest: an issue's sections, per-reader variants and their rendering.

A reader receives the sections of the categories they chose (all of them when they
chose none), in the language they chose. Readers who choose the same sections in the
same language share a variant, which is rendered once; their personal links are
placeholders that each message fills in.

Editions (issue 14): the editors curate one issue — order, pins, removals, sections,
abstracts. `Curation` reads that curation and every version of its stories in a fixed
number of queries; `Curation.edition(language)` then follows it in one language,
putting each story's version in that language in its place. A story with no version
in the language is left out or shown in its original language, marked, as the
newsletter's `missing_translation` policy says. Editions are built in memory, so a
batch with readers in many languages costs no more queries than one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field

import markdown
from django.conf import settings
from django.db.models import F, Prefetch, Q
from django.utils import timezone, translation
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from articles.feeds import sanitise_html
from articles.languages import language_codes, language_name, reader_language
from articles.models import Article, Category, CategoryName
from newsletter.emails import RenderedEmail, render_email
from newsletter.links import (
    PREFERENCES_URL,
    UNSUBSCRIBE_URL,
    archive_url,
    issue_preview_url,
    issue_web_url,
    tracked_url,
)
from newsletter.models import Issue, IssueItem, IssueText, Newsletter
from newsletter.plaintext import readable_text

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
    # Set when the edition has no version of the story in its language and shows the
    # original instead: that language's code, so the templates mark it.
    original_language: str = ""

    @property
    def original_language_name(self) -> str:
        return language_name(self.original_language) if self.original_language else ""


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


@dataclass(frozen=True)
class EditionText:
    """The editors' words for one edition; blank where they wrote none."""

    headline: str = ""
    preheader: str = ""
    editor_note: str = ""


@dataclass
class Digest:
    issue: Issue
    sections: list[DigestSection]
    language: str = field(default_factory=lambda: settings.LANGUAGE_CODE)
    text: EditionText = field(default_factory=EditionText)
    curation: Curation | None = field(default=None, repr=False)

    def edition(self, language: str) -> Digest:
        """Return this issue's edition in `language` (built once, from the same reads)."""
        if self.curation is None or language == self.language:
            return self
        return self.curation.edition(language)

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


def editor_note_html(issue: Issue, note: str | None = None) -> SafeString:
    """Return the editor's Markdown note (the issue's, or an edition's) as sanitised HTML."""
    note = issue.editor_note if note is None else note
    if not note.strip():
        return mark_safe("")
    return mark_safe(sanitise_html(markdown.markdown(note)))  # noqa: S308 - nh3-sanitised


def editor_note_text(issue: Issue, note: str | None = None) -> str:
    """Return the editor's note as the plain-text part shows it: text, not Markdown."""
    return readable_text(editor_note_html(issue, note))


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


@dataclass
class Curation:
    """One issue as the editors curated it, with every version of its stories.

    Read once (a fixed number of queries); each language's edition is built from it
    in memory and kept.
    """

    issue: Issue
    items: list[IssueItem]
    related: dict[int, list[Article]]  # curated article id -> related reading
    versions: dict[int, dict[str, Article]]  # story id -> {language: article}
    section_names: dict[int, dict[str, str]]  # category id -> {language: name}
    texts: dict[str, IssueText]
    utm_medium: str | None
    _editions: dict[str, Digest] = field(default_factory=dict)

    def version(self, article: Article, language: str) -> Article | None:
        if article.language == language:
            return article
        return self.versions.get(article.story_id, {}).get(language)

    def text(self, language: str) -> EditionText:
        """Return the edition's headline, preheader and note; the issue's where it has none."""
        issue = self.issue
        default = EditionText(  # issue 10's headline and preheader: the default language's
            headline=issue.headline, preheader=issue.preheader, editor_note=issue.editor_note
        )
        own = self.texts.get(language)
        if language == settings.LANGUAGE_CODE or own is None:
            # Another language with nothing of its own says nothing rather than
            # showing the default language's words to a reader who chose otherwise.
            return default if language == settings.LANGUAGE_CODE else EditionText()
        return EditionText(
            headline=own.headline, preheader=own.preheader, editor_note=own.editor_note
        )

    def coverage(self) -> dict[str, tuple[int, int]]:
        """Return {language: (stories with a version in it, stories)} for every language."""
        total = len(self.items)
        return {
            code: (sum(1 for item in self.items if self.version(item.article, code)), total)
            for code in language_codes()
        }

    def edition(self, language: str) -> Digest:
        if language not in self._editions:
            self._editions[language] = self._build(language)
        return self._editions[language]

    def _build(self, language: str) -> Digest:
        issue = self.issue
        omit = issue.newsletter.missing_translation == Newsletter.MissingTranslation.OMIT
        by_key: dict[int, DigestSection] = {}
        order: dict[int, tuple[int, str]] = {}
        with translation.override(language):
            more_news = _("More news")
        for item in self.items:
            curated = item.article
            article = self.version(curated, language)
            if article is None and omit:
                continue
            # A category not yet turned on has no section of its own: "More news" (issue 10).
            section: Category | None = (
                item.section if item.section and item.section.enabled else None
            )
            key = section.pk if section else UNCATEGORISED
            if key not in by_key:
                title = (
                    self.section_names.get(section.pk, {}).get(language, section.name)
                    if section
                    else more_news
                )
                by_key[key] = DigestSection(key=key, title=title)
                order[key] = (section.position, section.name) if section else (10**9, "")
            shown = article or curated
            related = [
                version
                for version in (self.version(a, language) for a in self.related[curated.pk])
                if version is not None
            ]
            by_key[key].items.append(
                DigestItem(
                    article=shown,
                    # The editor's abstract is written for the curated version only.
                    abstract=item.abstract if shown.pk == curated.pk else shown.abstract,
                    url=tracked_url(shown.url, issue, medium=self.utm_medium),
                    keywords=[k.name for k in shown.keywords.all()],
                    related=[
                        (a.title, tracked_url(a.url, issue, medium=self.utm_medium))
                        for a in related
                    ],
                    pinned=item.pinned,
                    original_language="" if article else curated.language,
                )
            )
        sections = [by_key[key] for key in sorted(by_key, key=lambda k: order[k])]
        for section in sections:  # only a section's first story shows its picture
            section.items[0].image = LeadImage.of(section.items[0].article)
        return Digest(
            issue=issue,
            sections=sections,
            language=language,
            text=self.text(language),
            curation=self,
        )


def curation_read(
    issue: Issue, *, include_removed: bool = False, utm_medium: str | None = None
) -> Curation:
    """Read the issue's curation and its stories' versions, with a fixed number of queries.

    Each article lists up to three related articles: the editor's choice when there
    is one, else those sharing the most keywords with it (never one in this issue).
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
    # Related reading adds, never repeats: an article this issue carries is never
    # listed, and when the editor's choice is all in the issue, keyword matches stand in.
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
    related = {
        item.article_id: chosen[item.article_id] or by_keywords.get(item.article_id, [])
        for item in items
    }
    # Every version of every story shown (curated and related), keywords included.
    stories = {item.article.story_id for item in items} | {
        a.story_id for articles in related.values() for a in articles
    }
    versions: dict[int, dict[str, Article]] = {}
    if stories:
        for article in (
            Article.objects.filter(
                Q(pk__in=stories) | Q(translation_of_id__in=stories),
                status=Article.Status.PUBLISHED,
            )
            .prefetch_related("keywords")
            .order_by("pk")
        ):
            versions.setdefault(article.story_id, {}).setdefault(article.language, article)
    section_ids = {item.section_id for item in items if item.section_id}
    section_names: dict[int, dict[str, str]] = {}
    if section_ids:
        for category_id, language, name in CategoryName.objects.filter(
            category_id__in=section_ids
        ).values_list("category_id", "language", "name"):
            section_names.setdefault(category_id, {})[language] = name
    return Curation(
        issue=issue,
        items=items,
        related=related,
        versions=versions,
        section_names=section_names,
        texts={text.language: text for text in IssueText.objects.filter(issue=issue)},
        utm_medium=utm_medium,
    )


def digest_build(
    issue: Issue,
    *,
    include_removed: bool = False,
    utm_medium: str | None = None,
    language: str | None = None,
) -> Digest:
    """Return the issue's edition in `language` (the default one when None).

    The other editions come from `.edition(code)` without another query.
    """
    curation = curation_read(issue, include_removed=include_removed, utm_medium=utm_medium)
    return curation.edition(reader_language(language))


def week_label(issue: Issue) -> str:
    """Return "Week 48, 2026" in the active language ("2026年第48周" in Chinese)."""
    year, week = issue.week.split("-W")
    return _("Week %(week)s, %(year)s") % {"week": int(week), "year": year}


def _titles(digest: Digest, variant: Variant) -> list[str]:
    return [
        item.article.title for section in digest.sections_for(variant) for item in section.items
    ]


def preheader(digest: Digest, variant: Variant) -> str:
    """Return the edition's preheader, else the first stories' titles of this variant."""
    if digest.text.preheader.strip():
        return digest.text.preheader.strip()[:180]
    return " · ".join(_titles(digest, variant)[:3])[:180]


def headline(digest: Digest, variant: Variant | None = None) -> str:
    """Return the edition's headline, else the lead story's title with name and number.

    Without `variant`, the lead of the whole issue (the archive and RSS show that).
    Call inside the edition's language.
    """
    titles = _titles(digest, digest.section_keys if variant is None else variant)
    return issue_headline(digest.issue, lead_title=titles[0] if titles else None, text=digest.text)


def issue_headline(issue: Issue, *, lead_title: str | None, text: EditionText | None = None) -> str:
    """Return the editors' headline, else `lead_title` with the newsletter's name and number.

    `text` is an edition's (issue 14); without it, the issue's own (default language).
    """
    own = (text.headline if text is not None else issue.headline).strip()
    if own:
        return own
    masthead = _("%(name)s No. %(number)s") % {
        "name": issue.newsletter.display_name,
        "number": issue.number,
    }
    return f"{lead_title} · {masthead}" if lead_title else f"{masthead} · {week_label(issue)}"


# Items as the digest shows them: sections by position ("More news" last), pinned first.
DIGEST_ORDER = (
    F("section__position").asc(nulls_last=True),
    "section__name",
    "-pinned",
    "position",
    "id",
)


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
    """Return what the digest's templates show; `capped` for an email, whole for the web.

    Call inside the edition's language (issue 14).
    """
    issue = digest.issue
    return {
        "newsletter": issue.newsletter,
        "issue": issue,
        "language": digest.language,
        "week_label": week_label(issue),
        "subject": headline(digest, variant),
        "headline": digest.text.headline,
        "sections": capped_sections(digest, variant) if capped else digest.sections_for(variant),
        "editor_note": editor_note_html(issue, digest.text.editor_note),
        "editor_note_text": editor_note_text(issue, digest.text.editor_note),
        "preheader": preheader(digest, variant),
        # A test copy's issue is not public yet: its "view in your browser" opens a
        # signed preview page instead of the archive page, which would be a 404.
        "web_url": issue_web_url(issue)
        if issue.status in PUBLIC_STATUSES and not test
        else issue_preview_url(issue),
        "archive_url": archive_url(),
        "unsubscribe_url": UNSUBSCRIBE_URL,
        "preferences_url": PREFERENCES_URL,
        "test": test,
    }


def digest_render(digest: Digest, variant: Variant, *, test: bool = False) -> RenderedEmail:
    """Render one variant of the digest in its edition's language, links left as placeholders.

    Inside the edition's language, its words are translated and reverse() gives that
    language's URLs (/zh-hans/newsletter/archive/…) for the browser and archive links.
    Dates are the newsroom's: rendered in the newsletter's zone, not the worker's.
    """
    with timezone.override(digest.issue.newsletter.tz):
        with translation.override(digest.language):
            context = digest_context(digest, variant, test=test, capped=True)
        return render_email("digest", context, language=digest.language)


def fill_placeholders(text: str, values: dict[str, str]) -> str:
    for marker, value in values.items():
        text = text.replace(marker, value)
    return text
