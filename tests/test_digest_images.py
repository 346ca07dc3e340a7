"""Each section's lead story shows the feed's picture: sized, described, linked, budgeted."""

from __future__ import annotations

import json
import re

import pytest

from articles.feeds import parse_feed
from articles.models import Article
from articles.services import articles_import
from newsletter.digest import digest_build, digest_render
from tests.factories import ArticleFactory, CategoryFactory, IssueFactory, IssueItemFactory

pytestmark = pytest.mark.django_db

RSS = """<?xml version="1.0"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>Portal</title>
<item><title>Content</title><link>https://portal.example.com/a.html</link>
 <pubDate>Mon, 23 Nov 2026 08:00:00 GMT</pubDate><description>A.</description>
 <media:content url="https://img.portal.example.com/a.jpg" medium="image" width="1200" height="675" fileSize="84000"/></item>
<item><title>Thumbnail</title><link>https://portal.example.com/b.html</link>
 <pubDate>Mon, 23 Nov 2026 08:00:00 GMT</pubDate><description>B.</description>
 <media:thumbnail url="https://img.portal.example.com/b.jpg" width="400" height="300"/></item>
<item><title>Enclosure</title><link>https://portal.example.com/c.html</link>
 <pubDate>Mon, 23 Nov 2026 08:00:00 GMT</pubDate><description>C.</description>
 <enclosure url="https://img.portal.example.com/c.png" type="image/png" length="5120"/></item>
<item><title>Podcast</title><link>https://portal.example.com/d.html</link>
 <pubDate>Mon, 23 Nov 2026 08:00:00 GMT</pubDate><description>D.</description>
 <enclosure url="https://portal.example.com/d.mp3" type="audio/mpeg" length="5120"/></item>
<item><title>Inline</title><link>https://portal.example.com/e.html</link>
 <pubDate>Mon, 23 Nov 2026 08:00:00 GMT</pubDate><description>E.</description>
 <media:content url="data:image/png;base64,iVBORw0KGgo=" medium="image"/></item>
</channel></rss>"""


def test_feeds_bring_their_pictures_from_media_content_thumbnail_enclosure_and_json_feed():
    articles_import(feed=parse_feed(RSS.encode(), name="rss"))
    json_feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Portal",
        "items": [
            {
                "id": "j1",
                "url": "https://portal.example.com/j.html",
                "title": "JSON",
                "date_published": "2026-11-23T08:00:00Z",
                "summary": "J.",
                "image": "https://img.portal.example.com/j.webp",
            }
        ],
    }
    articles_import(feed=parse_feed(json.dumps(json_feed).encode(), name="json"))
    found = {
        a.title: (a.image_url, a.image_width, a.image_height, a.image_bytes)
        for a in Article.objects.all()
    }
    assert found == {
        "Content": ("https://img.portal.example.com/a.jpg", 1200, 675, 84000),
        "Thumbnail": ("https://img.portal.example.com/b.jpg", 400, 300, None),
        "Enclosure": ("https://img.portal.example.com/c.png", None, None, 5120),
        "Podcast": ("", None, None, None),  # not a picture
        "Inline": ("", None, None, None),  # a data: URL is never carried
        "JSON": ("https://img.portal.example.com/j.webp", None, None, None),
    }


@pytest.fixture
def issue_with_pictures(site):
    issue = IssueFactory()
    for n, name in enumerate(["Finance", "Energy", "Infrastructure", "Trade"]):
        category = CategoryFactory(name=name, position=n)
        for m in range(3):
            IssueItemFactory(
                issue=issue,
                article=ArticleFactory(
                    title=f"{name} story {m}",
                    category=category,
                    image_url=f"https://img.portal.example.com/{name}-{m}.jpg",
                    image_width=1200 if n != 1 else None,
                    image_height=800 if n != 1 else None,
                    image_bytes=90_000,
                    image_alt="Container cranes at Piraeus at dawn" if n == 0 else "",
                ),
            )
    return issue


def test_the_lead_story_of_each_section_shows_its_picture_with_size_and_alt_text(
    issue_with_pictures,
):
    digest = digest_build(issue_with_pictures)
    html = digest_render(digest, digest.section_keys).html
    images = re.findall(r"<img [^>]+>", html)
    assert len(images) == 4  # one per section: the lead story's, not every story's
    first = images[0]
    assert 'src="https://img.portal.example.com/Finance-0.jpg"' in first
    assert 'width="544"' in first and 'height="363"' in first  # 1200x800 scaled to the column
    assert 'alt="Container cranes at Piraeus at dawn"' in first
    # No size from the feed: a 16:9 box; no description: the story's title says what it is.
    assert 'width="544" height="306"' in images[1] and 'alt="Energy story 0"' in images[1]
    # Linked from the portal, never inlined or attached.
    assert "data:image" not in html and "cid:" not in html
    # With pictures blocked, the alt text shows in a readable box, and the title follows.
    assert re.search(r"color: #323f4b", first) and "font-size: 13px" in first
    assert html.index(images[0]) < html.index(">Finance story 0</a>")


def test_pictures_count_in_the_size_budget_and_the_html_stays_under_gmails_clip(
    issue_with_pictures,
):
    digest = digest_build(issue_with_pictures)
    assert digest.image_bytes(digest.section_keys) == 4 * 90_000
    finance_only = (digest.sections[0].key,)
    assert digest.image_bytes(finance_only) == 90_000
    html = digest_render(digest, digest.section_keys).html
    assert len(html.encode()) < 100 * 1024


def test_a_story_without_a_picture_shows_none(settings):
    issue = IssueFactory()
    IssueItemFactory(issue=issue, article=ArticleFactory(image_url=""))
    digest = digest_build(issue)
    assert "<img" not in digest_render(digest, digest.section_keys).html
