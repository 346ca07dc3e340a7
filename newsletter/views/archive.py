"""Past issues on the web: the archive and each sent issue as a page."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from newsletter.digest import digest_build, digest_context
from newsletter.selectors import issues_published, newsletter_default


def archive(request: HttpRequest) -> HttpResponse:
    newsletter = newsletter_default()
    page = Paginator(issues_published(newsletter=newsletter), 20).get_page(request.GET.get("page"))
    return render(request, "newsletter/archive.html", {"newsletter": newsletter, "page": page})


def archive_issue(request: HttpRequest, number: int) -> HttpResponse:
    newsletter = newsletter_default()
    issue = get_object_or_404(issues_published(newsletter=newsletter), number=number)
    digest = digest_build(issue)
    context = digest_context(digest, digest.section_keys)
    return render(request, "newsletter/archive_issue.html", context)
