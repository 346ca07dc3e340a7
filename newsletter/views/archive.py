"""Past issues on the web: the archive, each issue as a page, and their RSS feed.

Only issues that went out are public (sending or sent); drafts, scheduled and
cancelled issues answer 404 like a number that never existed.

Each exists per language (issue 14): /newsletter/archive/ is the default language's
edition, /zh-hans/newsletter/archive/ the Chinese one, and so on; the URL's language
is the active one here, and each page shows that language's edition of the issue.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.syndication.views import Feed
from django.core.paginator import Paginator
from django.db.models import Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.feedgenerator import Rss201rev2Feed

from articles.languages import reader_language
from articles.models import Article
from newsletter.digest import (
    DIGEST_ORDER,
    EditionText,
    digest_build,
    digest_context,
    headline,
    issue_headline,
    week_label,
)
from newsletter.links import archive_url, feed_url, issue_web_url, tracked_url
from newsletter.models import Issue, IssueItem, Newsletter
from newsletter.selectors.issues import issues_published
from newsletter.selectors.newsletters import newsletter_default
from newsletter.tokens import issue_preview_check

ISSUES_PER_PAGE = 20
FEED_ISSUES = 20
# Links from the web archive are told apart from the email's in analytics.
WEB_MEDIUM = "web"


def archive(request: HttpRequest) -> HttpResponse:
    newsletter = newsletter_default()
    issues = (
        issues_published(newsletter=newsletter)
        .select_related("newsletter")
        .prefetch_related(
            "texts",  # each edition's own headline (issue 14)
            Prefetch(
                "items",
                queryset=IssueItem.objects.filter(removed=False)
                .select_related("article")
                .order_by(*DIGEST_ORDER),
                to_attr="shown_items",
            ),
        )
    )
    page = Paginator(issues, ISSUES_PER_PAGE).get_page(request.GET.get("page"))
    language = _language()
    versions = story_versions(
        stories={item.article.story_id for issue in page for item in issue.shown_items},
        language=language,
    )
    for issue in page:
        issue.week_label = week_label(issue)
        # This language's edition: each story's version in it, or as the policy says.
        omit = issue.newsletter.missing_translation == Newsletter.MissingTranslation.OMIT
        shown = []
        for item in issue.shown_items:
            article = item.article
            version = article if article.language == language else versions.get(article.story_id)
            if version is not None or not omit:
                shown_article = version or article
                shown_article.read_url = tracked_url(shown_article.url, issue, medium=WEB_MEDIUM)
                shown.append(shown_article)
        issue.shown_articles = shown
        issue.headline_text = issue_headline(
            issue,
            lead_title=shown[0].title if shown else None,
            text=_edition_text(issue, language),
        )
    return render(
        request,
        "newsletter/archive.html",
        {
            "newsletter": newsletter,
            "page": page,
            "feed_url": reverse("newsletter:feed"),
            # The description is the newsroom's own words, in the default language only.
            "default_language": settings.LANGUAGE_CODE,
        },
    )


def archive_issue(request: HttpRequest, number: int) -> HttpResponse:
    newsletter = newsletter_default()
    issue = get_object_or_404(issues_published(newsletter=newsletter), number=number)
    return _issue_page(request, issue, preview=False)


def _issue_page(request: HttpRequest, issue: Issue, *, preview: bool) -> HttpResponse:
    digest = digest_build(issue, utm_medium=WEB_MEDIUM, language=_language())
    context = digest_context(digest, digest.section_keys)
    context["feed_url"] = reverse("newsletter:feed")
    context["share_title"] = headline(digest)
    context["preview"] = preview
    return render(request, "newsletter/archive_issue.html", context)


def story_versions(*, stories: set[int], language: str) -> dict[int, Article]:
    """Return {story id: its published version in `language`}, in one query."""
    found: dict[int, Article] = {}
    for article in Article.objects.filter(
        Q(pk__in=stories) | Q(translation_of_id__in=stories),
        language=language,
        status=Article.Status.PUBLISHED,
    ).order_by("pk"):
        found.setdefault(article.story_id, article)
    return found


def _edition_text(issue: Issue, language: str) -> EditionText | None:
    """Return an edition's own words from the prefetched texts; None for the default."""
    if language == settings.LANGUAGE_CODE:
        return None
    own = next((t for t in issue.texts.all() if t.language == language), None)
    return EditionText(headline=own.headline) if own else EditionText()


def _language() -> str:
    return reader_language(translation.get_language())


def issue_preview(request: HttpRequest, token: str) -> HttpResponse:
    """Show any issue, draft included, to whoever holds its signed link (a test copy's).

    The page is the archive page marked as a preview, kept out of search engines.
    """
    issue = issue_preview_check(token)
    if issue is None:
        return render(request, "newsletter/bad_link.html", status=404)
    response = _issue_page(request, issue, preview=True)
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


class IssueFeed(Feed):
    """RSS 2.0 of the newest issues that went out, each linking to its archive page."""

    feed_type = Rss201rev2Feed

    def get_object(self, request: HttpRequest, *args, **kwargs):
        return newsletter_default()

    def title(self, newsletter) -> str:
        return newsletter.display_name

    def link(self, newsletter) -> str:
        return archive_url()

    def feed_url(self, newsletter) -> str:
        return feed_url()

    def description(self, newsletter) -> str:
        # The description is the newsroom's own words, in the default language only.
        if newsletter.description and _language() == settings.LANGUAGE_CODE:
            return newsletter.description
        return newsletter.display_name

    def items(self, newsletter):
        return issues_published(newsletter=newsletter).select_related("newsletter")[:FEED_ISSUES]

    def item_title(self, issue: Issue) -> str:
        # The lead story of this language's edition, as the email's subject has it.
        return headline(digest_build(issue, language=_language()))

    def item_link(self, issue: Issue) -> str:
        return issue_web_url(issue)

    def item_guid(self, issue: Issue) -> str:
        return issue_web_url(issue)

    item_guid_is_permalink = True

    def item_description(self, issue: Issue) -> str:
        # The feed at /<language>/newsletter/feed/ carries that language's edition.
        digest = digest_build(issue, utm_medium=WEB_MEDIUM, language=_language())
        context = digest_context(digest, digest.section_keys)
        # The editors' own preheader leads the item; the fallback (the first stories'
        # titles) would only repeat the list below it.
        context["own_preheader"] = digest.text.preheader.strip()
        return render_to_string("newsletter/archive_feed_item.html", context)

    def item_pubdate(self, issue: Issue):
        return issue.sent_at or issue.send_started_at
