"""The RSS feed of past issues at /newsletter/feed/."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from newsletter.models import Issue
from tests.conftest import SITE
from tests.factories import ArticleFactory, IssueFactory, IssueItemFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("site")]


def an_issue_of(number: int, status: str, sent_at: datetime | None = None) -> Issue:
    """Make issue No. `number` in that status, its one story titled "Story of No. `number`"."""
    made = IssueFactory(
        number=number,
        status=status,
        sent_at=sent_at,
        week=f"2026-W{number:02d}",
        utm_source="newsletter",
        utm_medium="email",
        utm_campaign=f"brw-{number}",
    )
    IssueItemFactory(issue=made, article=ArticleFactory(title=f"Story of No. {number}"))
    return made


def test_the_feed_lists_issues_that_went_out_newest_first(client):
    an_issue_of(10, "sent", datetime(2026, 3, 6, 1, 0, tzinfo=UTC))
    an_issue_of(11, "sent", datetime(2026, 3, 13, 1, 0, tzinfo=UTC))
    an_issue_of(12, "draft")
    an_issue_of(13, "scheduled")
    an_issue_of(14, "cancelled")
    response = client.get("/newsletter/feed/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/rss+xml")
    channel = ET.fromstring(response.content).find("channel")
    assert channel.findtext("title") == "Belt & Road Weekly"
    assert channel.findtext("link") == f"{SITE}/newsletter/archive/"
    items = channel.findall("item")
    assert [i.findtext("title") for i in items] == [
        "Story of No. 11 · Belt & Road Weekly No. 11",  # the lead story's title by default
        "Story of No. 10 · Belt & Road Weekly No. 10",
    ]
    first = items[0]
    assert first.findtext("link") == f"{SITE}/newsletter/archive/11/"
    assert first.findtext("guid") == f"{SITE}/newsletter/archive/11/"
    assert first.findtext("pubDate") == "Fri, 13 Mar 2026 01:00:00 +0000"
    description = first.findtext("description")
    assert "Story of No. 11" in description and "utm_medium=web" in description


def test_the_feed_is_empty_but_valid_before_the_first_issue(client):
    an_issue_of(1, "draft")
    channel = ET.fromstring(client.get("/newsletter/feed/").content).find("channel")
    assert channel.findall("item") == []
