"""Emails to the newsroom: a draft is ready, a week was empty, a scheduled issue did not go.

They go to the active members of the "Editors" group who have an email address, one
message each, from DEFAULT_FROM_EMAIL (they are staff mail, not the newsletter's).
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import get_connection
from django.urls import reverse

from newsletter.digest import digest_build, week_label
from newsletter.emails import build_message, render_email
from newsletter.links import absolute
from newsletter.models import Issue, Newsletter
from newsletter.selectors.editors import editor_addresses


def _notify(name: str, context: dict) -> int:
    """Render templates/emails/<name>.* once and send it to every editor; return how many."""
    addresses = editor_addresses()
    if not addresses:
        return 0
    rendered = render_email(name, context)
    messages = [
        build_message(rendered, sender=settings.DEFAULT_FROM_EMAIL, to=address)
        for address in addresses
    ]
    return get_connection().send_messages(messages) or 0


def _issue_context(issue: Issue) -> dict:
    digest = digest_build(issue)
    return {
        "newsletter": issue.newsletter,
        "issue": issue,
        "week_label": week_label(issue),
        "sections": digest.sections,
        "article_count": digest.article_count,
        "admin_url": absolute(reverse("admin:newsletter_issue_change", args=[issue.pk])),
        "preview_url": absolute(reverse("admin:newsletter_issue_preview", args=[issue.pk])),
        "auto": issue.newsletter.approval_policy == Newsletter.Approval.AUTO,
    }


def editors_notify_drafted(*, issue: Issue) -> int:
    """Tell the editors a draft is ready, with a link to it and when it goes out, if it does."""
    return _notify("issue_drafted", _issue_context(issue))


def editors_notify_empty_week(*, newsletter: Newsletter, week: str) -> int:
    """Tell the editors the scheduled compile found no new article, so no issue was made."""
    return _notify(
        "issue_empty_week",
        {
            "newsletter": newsletter,
            "week": week,
            "issues_url": absolute(reverse("admin:newsletter_issue_changelist")),
            "articles_url": absolute(reverse("admin:articles_article_changelist")),
        },
    )


def editors_notify_not_sent(*, issue: Issue, reason: str) -> int:
    """Tell the editors a scheduled issue could not go out and is back in draft."""
    return _notify("issue_not_sent", {**_issue_context(issue), "reason": reason})


def editors_notify(*, name: str, context: dict) -> int:
    """Send templates/emails/<name>.* to every editor (staff mail of other apps); return how many."""
    return _notify(name, context)
