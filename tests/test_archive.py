"""The web archive: sent issues only, each as a page with share tags, related reading, UTM links."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from django.utils import timezone

from articles.models import Article
from newsletter.digest import digest_build, digest_render
from newsletter.models import Issue
from tests.conftest import SITE
from tests.factories import (
    ArticleFactory,
    CategoryFactory,
    IssueFactory,
    IssueItemFactory,
    KeywordFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("site")]


def a_sent_issue(number: int, **kwargs) -> Issue:
    """Make issue No. `number`, sent, its one story headlined "Headline of issue `number`"."""
    issue = IssueFactory(
        number=number,
        status=Issue.Status.SENT,
        sent_at=timezone.now() - timedelta(days=7 * (30 - number)),
        utm_source="newsletter",
        utm_medium="email",
        utm_campaign=f"brw-{number}",
        **kwargs,
    )
    IssueItemFactory(issue=issue, article=ArticleFactory(title=f"Headline of issue {number}"))
    return issue


def links(html: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', html)


def test_the_archive_lists_issues_that_went_out_and_nothing_else(client):
    a_sent_issue(1)
    sending = a_sent_issue(2)
    Issue.objects.filter(pk=sending.pk).update(status=Issue.Status.SENDING, sent_at=None)
    for number, status in ((3, "draft"), (4, "scheduled"), (5, "cancelled")):
        IssueFactory(number=number, status=status, title=f"Secret {number}")
    page = client.get("/newsletter/archive/").content.decode()
    assert "Headline of issue 1" in page and "Headline of issue 2" in page
    assert "Secret" not in page
    for number, expected in ((1, 200), (2, 200), (3, 404), (4, 404), (5, 404), (99, 404)):
        assert client.get(f"/newsletter/archive/{number}/").status_code == expected, number


def test_the_archive_is_paginated_newest_first(client):
    for number in range(1, 23):
        a_sent_issue(number)
    first = client.get("/newsletter/archive/").content.decode()
    assert first.index("No. 22 ") < first.index("No. 21 ")
    assert "No. 3 " in first and "No. 2 " not in first
    assert "Page 1 of 2" in first
    second = client.get("/newsletter/archive/?page=2").content.decode()
    assert "No. 2 " in second and "No. 1 " in second and "No. 3 " not in second
    assert client.get("/newsletter/archive/?page=nonsense").status_code == 200


def test_an_issue_page_has_share_meta_tags_and_a_canonical_link(client):
    issue = a_sent_issue(7)
    page = client.get("/newsletter/archive/7/").content.decode()
    url = f"{SITE}/newsletter/archive/7/"
    assert f'<link rel="canonical" href="{url}">' in page
    assert f'<meta property="og:url" content="{url}">' in page
    assert (
        '<meta property="og:title" content="Headline of issue 7 · Belt &amp; Road Weekly No. 7">'
        in page
    )
    assert '<meta property="og:description" content="Headline of issue 7">' in page
    assert '<meta name="twitter:card" content="summary">' in page
    sent = issue.sent_at.astimezone(issue.newsletter.tz)  # the newsroom's time, same instant
    assert f'<meta property="article:published_time" content="{sent.isoformat()}">' in page
    assert "/newsletter/feed/" in page


def test_the_digests_view_in_browser_link_points_to_the_issue_page():
    issue = a_sent_issue(7)
    digest = digest_build(issue)
    email = digest_render(digest, digest.section_keys)
    assert f"View this issue in your browser: {SITE}/newsletter/archive/7/" in email.text
    assert f'href="{SITE}/newsletter/archive/7/"' in email.html


def test_links_are_absolute_and_carry_the_issues_utm_tags(client):
    issue = a_sent_issue(7)
    article = issue.items.get().article
    Article.objects.filter(pk=article.pk).update(url="https://portal.example.com/a.html?ref=home")
    digest = digest_build(issue)
    email = digest_render(digest, digest.section_keys)
    tagged = "https://portal.example.com/a.html?ref=home&utm_source=newsletter&utm_medium=email&utm_campaign=brw-7"
    assert tagged.replace("&", "&amp;") in email.html
    assert tagged in email.text
    assert all(link.startswith(("https://", "mailto:", "%%")) for link in links(email.html))
    # The archive says where the click came from: the web, not the email.
    page = client.get("/newsletter/archive/7/").content.decode()
    assert tagged.replace("utm_medium=email", "utm_medium=web").replace("&", "&amp;") in page


def test_editors_change_the_utm_tags_per_issue_or_clear_them():
    issue = a_sent_issue(7)
    issue.utm_campaign = "spring special"
    issue.save()
    item = digest_build(issue).sections[0].items[0]
    assert parse_qs(urlsplit(item.url).query)["utm_campaign"] == ["spring special"]
    issue.utm_source = issue.utm_medium = issue.utm_campaign = ""
    issue.save()
    item = digest_build(issue, utm_medium="web").sections[0].items[0]
    assert urlsplit(item.url).query == ""


# --- related reading ------------------------------------------------------------------------


@pytest.fixture
def keywords():
    return {name: KeywordFactory(name=name) for name in ("rail", "laos", "trade", "ports")}


def related_titles(issue: Issue, title: str) -> list[str]:
    for section in digest_build(issue).sections:
        for item in section.items:
            if item.article.title == title:
                return [t for t, _ in item.related]
    raise AssertionError(f"{title} not in the digest")


def test_the_editors_choice_of_related_reading_comes_first_and_alone(keywords):
    issue = a_sent_issue(7)
    lead = issue.items.get().article
    lead.keywords.set([keywords["rail"]])
    chosen = [ArticleFactory(title=f"Chosen {n}") for n in range(4)]
    lead.related.set(chosen)
    ArticleFactory(title="Shares a keyword").keywords.set([keywords["rail"]])
    shown = related_titles(issue, lead.title)
    assert len(shown) == 3 and set(shown) < {a.title for a in chosen}
    assert "Shares a keyword" not in related_titles(issue, lead.title)


def test_without_a_choice_related_reading_is_by_shared_keywords(keywords):
    now = timezone.now()
    issue = a_sent_issue(7, window_end=now)
    lead = issue.items.get().article
    lead.keywords.set([keywords["rail"], keywords["laos"], keywords["trade"]])

    def story(title, words, days_ago):
        article = ArticleFactory(title=title, published_at=now - timedelta(days=days_ago))
        article.keywords.set([keywords[w] for w in words])
        return article

    story("Two shared, older", ["rail", "laos"], 30)
    story("Three shared", ["rail", "laos", "trade"], 60)
    story("One shared, newest", ["trade"], 2)
    story("One shared, older", ["rail"], 40)
    story("Nothing shared", ["ports"], 1)
    story("Published after the issue", ["rail", "laos", "trade"], -3)
    draft = story("A draft", ["rail", "laos", "trade"], 3)
    Article.objects.filter(pk=draft.pk).update(status=Article.Status.DRAFT)
    same_issue = IssueItemFactory(issue=issue, article=story("In this issue", ["rail", "laos"], 1))
    assert related_titles(issue, lead.title) == [
        "Three shared",
        "Two shared, older",
        "One shared, newest",
    ]
    assert "Headline" not in " ".join(related_titles(issue, same_issue.article.title))


def test_related_reading_shows_in_the_email_and_on_the_web(client, keywords):
    issue = a_sent_issue(7)
    lead = issue.items.get().article
    lead.related.set(
        [
            ArticleFactory(
                title="Background: the Laos railway", url="https://portal.example.com/laos.html"
            )
        ]
    )
    digest = digest_build(issue)
    email = digest_render(digest, digest.section_keys)
    assert "Related reading:" in email.text and "Background: the Laos railway" in email.text
    assert "https://portal.example.com/laos.html?utm_source=newsletter" in email.text
    page = client.get("/newsletter/archive/7/").content.decode()
    assert "Background: the Laos railway" in page
    assert "https://portal.example.com/laos.html?utm_source=newsletter&amp;utm_medium=web" in page


def test_related_reading_costs_a_fixed_number_of_queries(django_assert_max_num_queries, keywords):
    issue = a_sent_issue(7)
    for n in range(12):
        article = ArticleFactory(title=f"Story {n}", category=CategoryFactory(name=f"Cat {n % 3}"))
        article.keywords.set([keywords["rail"], keywords["trade"]])
        IssueItemFactory(issue=issue, article=article)
        ArticleFactory(title=f"Older {n}").keywords.set([keywords["rail"]])
    # Issue 14 adds three: every version of the stories, their keywords, section
    # names per language (and one for the editions' texts); still fixed.
    with django_assert_max_num_queries(12):
        digest = digest_build(issue)
    assert all(
        len(item.related) == 3
        for s in digest.sections
        for item in s.items
        if item.article.title.startswith("Story")
    )


def test_an_issue_page_has_contents_a_subscribe_box_and_share_links_without_javascript(client):
    a_sent_issue(21)
    page = client.get("/newsletter/archive/21/").content.decode()
    web_url = f"{SITE}/newsletter/archive/21/"
    encoded = "https%3A%2F%2Fweekly.example.org%2Fnewsletter%2Farchive%2F21%2F"
    # The shared text is the issue's headline, as its og:title says.
    title = unescape(re.search(r'<meta property="og:title" content="([^"]+)"', page).group(1))
    text = quote(title, safe="")
    for share in (
        f"https://x.com/intent/post?text={text}&amp;url={encoded}",
        f"https://www.linkedin.com/sharing/share-offsite/?url={encoded}",
        f"https://www.facebook.com/sharer/sharer.php?u={encoded}",
        f"mailto:?subject={text}&amp;body={encoded}",
    ):
        assert f'href="{share}' in page, share
    assert web_url in page
    assert "<script" not in page.split("<main", 1)[1]  # nothing on the page needs JavaScript
    # The subscribe box opens the subscription page with the address filled in.
    box = page[page.index('class="subscribe-box"') :]
    assert 'action="/newsletter/subscribe/embed/"' in box and 'type="email" name="email"' in box
    response = client.post("/newsletter/subscribe/embed/", {"email": "new.reader@example.org"})
    assert (
        response.status_code == 200
        and 'value="new.reader@example.org"' in response.content.decode()
    )


def test_article_titles_on_the_archive_are_links_with_a_read_link(client):
    a_sent_issue(22)
    article = Article.objects.get(title="Headline of issue 22")
    listing = client.get("/newsletter/archive/").content.decode()
    title_link = re.search(r'<a href="([^"]+)">Headline of issue 22</a>', listing)
    assert title_link and title_link.group(1).startswith(article.url)
    assert "utm_medium=web" in title_link.group(1)
    assert re.search(r'<a class="read" href="[^"]+"[^>]*>Read &rarr;</a>', listing)
    page = client.get("/newsletter/archive/22/").content.decode()
    assert re.search(r'<p class="read-link"><a href="[^"]*story[^"]*">Read<span', page)
