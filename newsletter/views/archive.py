"""Past issues on the web: the archive, each issue as a page, and their RSS feed.

Only issues that went out are public (sending or sent); drafts, scheduled and
cancelled issues answer 404 like a number that never existed.
"""

from __future__ import annotations

from django.contrib.syndication.views import Feed
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.feedgenerator import Rss201rev2Feed

from newsletter.digest import (
    DIGEST_ORDER,
    absolute,
    digest_build,
    digest_context,
    headline,
    issue_headline,
    issue_items_in_order,
    issue_web_url,
    tracked_url,
    week_label,
)
from newsletter.models import Issue, IssueItem
from newsletter.selectors import issues_published, newsletter_default
from newsletter.tokens import issue_preview_check

ISSUES_PER_PAGE = 20
FEED_ISSUES = 20
# Links from the web archive are told apart from the email's in analytics.
WEB_MEDIUM = "web"


def archive(request: HttpRequest) -> HttpResponse:
    newsletter = newsletter_default()
    issues = issues_published(newsletter=newsletter).prefetch_related(
        Prefetch(
            "items",
            queryset=IssueItem.objects.filter(removed=False)
            .select_related("article")
            .order_by(*DIGEST_ORDER),
            to_attr="shown_items",
        )
    )
    page = Paginator(issues, ISSUES_PER_PAGE).get_page(request.GET.get("page"))
    for issue in page:
        issue.week_label = week_label(issue)
        lead = issue.shown_items[0].article.title if issue.shown_items else None
        issue.headline_text = issue_headline(issue, lead_title=lead)
        for item in issue.shown_items:
            item.read_url = tracked_url(item.article.url, issue, medium=WEB_MEDIUM)
    return render(
        request,
        "newsletter/archive.html",
        {"newsletter": newsletter, "page": page, "feed_url": reverse("newsletter:feed")},
    )


def archive_issue(request: HttpRequest, number: int) -> HttpResponse:
    newsletter = newsletter_default()
    issue = get_object_or_404(issues_published(newsletter=newsletter), number=number)
    return _issue_page(request, issue, preview=False)


def _issue_page(request: HttpRequest, issue: Issue, *, preview: bool) -> HttpResponse:
    digest = digest_build(issue, utm_medium=WEB_MEDIUM)
    context = digest_context(digest, digest.section_keys)
    context["feed_url"] = reverse("newsletter:feed")
    context["share_title"] = headline(digest)
    context["preview"] = preview
    return render(request, "newsletter/archive_issue.html", context)


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
        return newsletter.name

    def link(self, newsletter) -> str:
        return absolute(reverse("newsletter:archive"))

    def feed_url(self, newsletter) -> str:
        return absolute(reverse("newsletter:feed"))

    def description(self, newsletter) -> str:
        return newsletter.description or newsletter.name

    def items(self, newsletter):
        return issues_published(newsletter=newsletter).select_related("newsletter")[:FEED_ISSUES]

    def item_title(self, issue: Issue) -> str:
        lead = issue_items_in_order(issue).values_list("article__title", flat=True).first()
        return issue_headline(issue, lead_title=lead)

    def item_link(self, issue: Issue) -> str:
        return issue_web_url(issue)

    def item_guid(self, issue: Issue) -> str:
        return issue_web_url(issue)

    item_guid_is_permalink = True

    def item_description(self, issue: Issue) -> str:
        digest = digest_build(issue, utm_medium=WEB_MEDIUM)
        return render_to_string(
            "newsletter/archive_feed_item.html", digest_context(digest, digest.section_keys)
        )

    def item_pubdate(self, issue: Issue):
        return issue.sent_at or issue.send_started_at
