"""What editors write and choose reaches readers as meant: headline and preheader, related
reading that never repeats the issue, new categories under "More news" until turned on,
and a plain-text part that is text."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
from django.core import mail
from django.urls import reverse

from articles.models import Category
from newsletter.digest import digest_build
from newsletter.models import Issue
from newsletter.selectors.issues import issue_preview
from newsletter.selectors.subscribers import categories_offered
from newsletter.services.issues import issue_compile, issue_send_test
from newsletter.weeks import IsoWeek
from tests.factories import (
    ArticleFactory,
    CategoryFactory,
    IssueFactory,
    IssueItemFactory,
    KeywordFactory,
    default_newsletter,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def one_section_issue():
    """Draft No. 4 of one section, Trade: "Lead story", then "Second story"."""
    issue = IssueFactory(number=4)
    trade = CategoryFactory(name="Trade", position=1)
    IssueItemFactory(issue=issue, article=ArticleFactory(title="Lead story", category=trade))
    IssueItemFactory(issue=issue, article=ArticleFactory(title="Second story", category=trade))
    return issue


def test_the_editors_headline_and_preheader_go_out_and_show_online(one_section_issue, client):
    one_section_issue.headline = "Piraeus doubles its capacity"
    one_section_issue.preheader = "Also: a new rail link to Budapest"
    one_section_issue.save()
    issue_send_test(issue=one_section_issue, to=["desk@example.org"])
    message = mail.outbox[0]
    assert message.subject == "[TEST] Piraeus doubles its capacity"
    html = message.alternatives[0][0]
    assert '<div class="preheader"' in html and "Also: a new rail link to Budapest" in html
    preview = issue_preview(issue=one_section_issue)
    assert preview.email.subject == "Piraeus doubles its capacity"
    assert re.search(
        r'<div class="preheader"[^>]*>Also: a new rail link to Budapest</div>', preview.email.html
    )
    Issue.objects.filter(pk=one_section_issue.pk).update(status="sent", sent_at=datetime.now(UTC))
    page = client.get(reverse("newsletter:archive-issue", args=[4])).content.decode()
    assert "<title>Piraeus doubles its capacity</title>" in page
    assert '<meta name="description" content="Also: a new rail link to Budapest">' in page
    assert (
        "Piraeus doubles its capacity" in client.get(reverse("newsletter:archive")).content.decode()
    )
    feed = ET.fromstring(client.get("/newsletter/feed/").content)
    assert feed.find("channel/item/title").text == "Piraeus doubles its capacity"
    description = feed.find("channel/item/description").text
    assert description.startswith("<p>Also: a new rail link to Budapest</p>")


def test_the_feed_item_leads_with_no_preheader_the_editors_did_not_write(one_section_issue, client):
    Issue.objects.filter(pk=one_section_issue.pk).update(status="sent", sent_at=datetime.now(UTC))
    feed = ET.fromstring(client.get("/newsletter/feed/").content)
    assert feed.find("channel/item/description").text.strip().startswith("<h3>Trade</h3>")


def test_without_a_headline_the_subject_is_the_lead_story_with_name_and_number(one_section_issue):
    assert (
        issue_preview(issue=one_section_issue).email.subject
        == "Lead story · Belt & Road Weekly No. 4"
    )


def test_related_reading_never_points_to_an_article_in_the_same_email(one_section_issue):
    lead, second = (item.article for item in one_section_issue.items.order_by("position"))
    elsewhere = ArticleFactory(title="Background from last month")
    lead.related.set([second, elsewhere])
    second.related.set([lead])  # everything it lists is in the issue: no list at all
    digest = digest_build(one_section_issue)
    items = {item.article.title: item for item in digest.sections[0].items}
    assert [title for title, _ in items["Lead story"].related] == ["Background from last month"]
    assert items["Second story"].related == []
    email = issue_preview(issue=one_section_issue).email
    assert email.text.count("Related reading:") == 1


def test_keyword_matches_stand_in_when_the_editors_choice_is_all_in_the_issue(one_section_issue):
    lead, second = (item.article for item in one_section_issue.items.order_by("position"))
    port = KeywordFactory(name="port")
    lead.keywords.set([port])
    lead.related.set([second])
    older = ArticleFactory(title="Older port story", published_at=datetime(2026, 1, 5, tzinfo=UTC))
    older.keywords.set([port])
    second.keywords.set([port])
    items = {i.article.title: i for i in digest_build(one_section_issue).sections[0].items}
    assert [title for title, _ in items["Lead story"].related] == ["Older port story"]


def test_a_category_first_seen_in_a_feed_is_off_and_its_articles_go_under_more_news(tmp_path):
    from django.core.management import call_command

    feed = tmp_path / "feed.json"
    feed.write_text(
        """{"version": "https://jsonfeed.org/version/1.1", "title": "Portal", "items": [
        {"id": "n1", "url": "https://portal.example.com/n1", "title": "Drones over the desert",
         "date_published": "2026-11-25T08:00:00Z", "_belt_and_road": {"category": "Technology"}}
        ]}""",
        encoding="utf-8",
    )
    call_command("import_articles", str(feed), stdout=open("/dev/null", "w"))  # noqa: SIM115
    technology = Category.objects.get(name="Technology")
    assert not technology.enabled
    newsletter = default_newsletter()
    assert technology not in categories_offered(newsletter=newsletter)
    # Even a newsletter that lists its sections carries the new category's articles.
    newsletter.categories.set([CategoryFactory(name="Trade")])
    issue = issue_compile(
        newsletter=newsletter,
        week=IsoWeek.parse("2026-W48"),
        now=datetime(2026, 11, 27, 2, 0, tzinfo=UTC),
    ).issue
    digest = digest_build(issue)
    assert [s.title for s in digest.sections] == ["More news"]
    technology.enabled = True
    technology.save()
    newsletter.categories.add(technology)
    assert [s.title for s in digest_build(issue).sections] == ["Technology"]
    assert technology in categories_offered(newsletter=newsletter)


def test_the_editors_markdown_note_reaches_the_text_part_as_text(one_section_issue):
    one_section_issue.editor_note = (
        "Dear readers,\n\nThis week **Piraeus** and _Gwadar_: see [our map](https://x.org/map)."
        "\n\n- rail\n- ports\n\n<b>Thanks</b> &amp; goodbye"
    )
    one_section_issue.save()
    text = issue_preview(issue=one_section_issue).email.text
    assert "This week Piraeus and Gwadar: see our map (https://x.org/map)." in text
    assert "- rail\n- ports" in text
    assert "Thanks & goodbye" in text
    for markup in ("**", "_Gwadar_", "](", "<b>", "&amp;", "<p>"):
        assert markup not in text
