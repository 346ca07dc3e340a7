"""Curate once, send in every language: editions follow the one curated issue (issue 14)."""

from __future__ import annotations

from email import message_from_bytes
from email.header import decode_header, make_header

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from articles.models import CategoryName
from newsletter.digest import curation_read, digest_build
from newsletter.models import Delivery, Issue, IssueText, Newsletter
from newsletter.services.issues import issue_compile, issue_send_test, issue_start_sending
from newsletter.weeks import IsoWeek
from tests.factories import (
    ArticleFactory,
    CategoryFactory,
    IssueFactory,
    IssueItemFactory,
    SubscriberFactory,
    default_newsletter,
)
from tests.language_steps import chinese_version
from tests.reader_steps import admin_client, html_of  # noqa: F401
from tests.sending_steps import send_in_one_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def bilingual_issue():
    """An issue of three English stories; two have Chinese versions, one has none."""
    energy = CategoryFactory(name="Energy")
    CategoryName.objects.create(category=energy, language="zh-hans", name="能源")
    issue = IssueFactory(number=21, editor_note="This week: **solar** in Central Asia.")
    stories = []
    for n, title in enumerate(
        [
            "Solar plant in Uzbekistan connects to the grid",
            "Wind farm in South Africa begins operation",
            "Hydropower talks resume in Nepal",
        ]
    ):
        article = ArticleFactory(title=title, category=energy)
        IssueItemFactory(issue=issue, article=article, position=n)
        stories.append(article)
    zh = [chinese_version(stories[0], title="乌兹别克斯坦光伏电站并网发电")]
    zh.append(chinese_version(stories[1], title="南非风电场投入商业运营"))
    return issue, stories, zh


def test_the_chinese_edition_follows_the_curation_with_the_chinese_versions(bilingual_issue):
    issue, stories, zh = bilingual_issue
    edition = digest_build(issue, language="zh-hans")
    items = [item for section in edition.sections for item in section.items]
    assert [item.article.title for item in items] == [
        "乌兹别克斯坦光伏电站并网发电",
        "南非风电场投入商业运营",
        "Hydropower talks resume in Nepal",  # no Chinese version: the original, marked
    ]
    assert [item.original_language for item in items] == ["", "", "en"]
    assert edition.sections[0].title == "能源"
    assert items[0].url.startswith(zh[0].url)
    english = digest_build(issue)
    assert [i.article.title for i in english.sections[0].items] == [s.title for s in stories]


def test_curation_changes_reach_every_edition(bilingual_issue):
    issue, stories, _zh = bilingual_issue
    item = issue.items.get(article=stories[1])
    item.pinned = True
    item.save()
    issue.items.filter(article=stories[0]).update(removed=True)
    titles = [i.article.title for i in digest_build(issue, language="zh-hans").sections[0].items]
    assert titles == ["南非风电场投入商业运营", "Hydropower talks resume in Nepal"]


def test_a_newsletter_can_leave_a_missing_story_out_of_an_edition(bilingual_issue):
    issue, _stories, _zh = bilingual_issue
    Newsletter.objects.filter(pk=issue.newsletter_id).update(
        missing_translation=Newsletter.MissingTranslation.OMIT
    )
    issue.refresh_from_db()
    titles = [i.article.title for i in digest_build(issue, language="zh-hans").sections[0].items]
    assert titles == ["乌兹别克斯坦光伏电站并网发电", "南非风电场投入商业运营"]


def test_coverage_counts_each_editions_stories(bilingual_issue):
    issue, _stories, _zh = bilingual_issue
    assert curation_read(issue).coverage() == {"en": (3, 3), "zh-hans": (2, 3)}


def test_the_issue_page_shows_each_editions_coverage(bilingual_issue, admin_client):
    issue, *_ = bilingual_issue
    page = admin_client.get(f"/admin/newsletter/issue/{issue.pk}/change/").content.decode()
    assert "zh-hans: 2 of 3 stories" in page
    assert "en: 3 of 3 stories" in page


def test_a_reader_gets_the_edition_of_their_language(bilingual_issue, run_on_commit):
    issue, stories, _zh = bilingual_issue
    IssueText.objects.create(
        issue=issue,
        language="zh-hans",
        headline="一带一路周刊：中亚光伏",
        preheader="本周：中亚的太阳能",
        editor_note="本周：**光伏**走进中亚。",
    )
    SubscriberFactory(email="en@example.com", language="en")
    SubscriberFactory(email="zh@example.com", language="zh-hans")
    with run_on_commit():
        issue_start_sending(issue=issue)
    by_reader = {m.to[0]: m for m in mail.outbox}
    chinese = by_reader["zh@example.com"]
    assert chinese.subject == "一带一路周刊：中亚光伏"
    html = html_of(chinese)
    assert '<html lang="zh-hans">' in html
    assert "乌兹别克斯坦光伏电站并网发电" in html
    assert "<strong>光伏</strong>" in html
    assert "本周：中亚的太阳能" in html  # the preheader
    assert "阅读全文" in chinese.body and "退订：" in chinese.body
    assert 'lang="en"' in html  # the story shown in its original language is marked
    english = by_reader["en@example.com"]
    assert "Solar plant in Uzbekistan" in english.body and "光伏" not in english.body
    assert "<strong>solar</strong>" in html_of(english)
    assert set(Delivery.objects.values_list("variant", flat=True)) == {
        f"en:{stories[0].category_id}",
        f"zh-hans:{stories[0].category_id}",
    }


def test_the_subject_and_from_name_are_rfc2047_encoded(bilingual_issue, run_on_commit):
    issue, *_ = bilingual_issue
    SubscriberFactory(email="zh@example.com", language="zh-hans")
    with run_on_commit():
        issue_start_sending(issue=issue)
    raw = mail.outbox[0].message().as_bytes()
    headers = raw.split(b"\n\n", 1)[0]
    assert all(byte < 128 for byte in headers), "a raw non-ASCII byte in the headers"
    parsed = message_from_bytes(raw)
    assert b"=?utf-8?" in headers.lower()
    assert str(make_header(decode_header(parsed["Subject"]))).endswith("一带一路周刊 第 21 期")
    assert str(make_header(decode_header(parsed["From"]))).startswith("一带一路周刊 <")


def test_languages_times_sections_are_rendered_once_each_with_constant_queries(bilingual_issue):
    issue, _stories, _zh = bilingual_issue
    other = CategoryFactory(name="Finance")
    IssueItemFactory(issue=issue, article=ArticleFactory(category=other))

    def queries_for(n: int) -> tuple[int, int]:
        Delivery.objects.all().delete()
        from newsletter.models import Subscriber

        Subscriber.objects.all().delete()
        Issue.objects.filter(pk=issue.pk).update(status="sending")
        for k in range(n):
            reader = SubscriberFactory(language="zh-hans" if k % 2 else "en")
            if k % 4 < 2:
                reader.categories.set([other])
        with CaptureQueriesContext(connection) as queries:
            result = send_in_one_batch(issue)
        return len(queries), result.variants

    small, variants = queries_for(4)
    assert variants == 4  # (en, zh-hans) x (everything, Finance only)
    assert queries_for(40) == (small, 4)


def test_preview_and_test_send_work_per_language(bilingual_issue, admin_client):
    issue, *_ = bilingual_issue
    issue.status = Issue.Status.DRAFT
    issue.save()
    response = admin_client.get(f"/admin/newsletter/issue/{issue.pk}/preview/?language=zh-hans")
    assert response.status_code == 200, response
    page = response.content.decode()
    assert "一带一路周刊 第 21 期" in page  # the Chinese subject
    html = admin_client.get(
        f"/admin/newsletter/issue/{issue.pk}/preview/html/?language=zh-hans"
    ).content.decode()
    assert "乌兹别克斯坦光伏电站并网发电" in html
    assert issue_send_test(issue=issue, to=["editor@example.com"], language="zh-hans") == 1
    assert (
        mail.outbox[-1].subject.startswith("[TEST] ")
        and "一带一路周刊 第 21 期" in mail.outbox[-1].subject
    )


def test_compiling_curates_each_story_once_by_its_original(settings):
    newsletter = default_newsletter()
    week = IsoWeek.parse("2026-W48")
    from datetime import UTC, datetime

    when = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    original = ArticleFactory(title="Port opens in Gwadar", published_at=when)
    chinese_version(original, title="瓜达尔港开港", published_at=when)
    result = issue_compile(newsletter=newsletter, week=week, now=datetime(2026, 11, 28, tzinfo=UTC))
    titles = list(result.issue.items.values_list("article__title", flat=True))
    assert titles == ["Port opens in Gwadar"]
    assert curation_read(result.issue).coverage()["zh-hans"] == (1, 1)


def test_a_busy_chinese_week_stays_under_gmails_clip_in_bytes(run_on_commit):
    """Gmail clips at 102 KB of HTML counted in bytes; Chinese is three bytes a character."""
    issue = IssueFactory(number=30, editor_note="A busy week.")
    IssueText.objects.create(issue=issue, language="zh-hans", editor_note="本周新闻繁多。" * 20)
    long_abstract = "中欧班列开行数量再创新高，沿线国家物流合作持续深化，" * 4
    for n in range(40):
        category = CategoryFactory(name=f"Section {n % 6}")
        article = ArticleFactory(title=f"Story {n}", category=category)
        IssueItemFactory(issue=issue, article=article)
        chinese_version(
            article,
            title=f"第{n}条：中欧班列开行数量再创新高，沿线物流合作深化",
            abstract=long_abstract,
        )
    SubscriberFactory(email="zh@example.com", language="zh-hans")
    with run_on_commit():
        issue_start_sending(issue=issue)
    html = html_of(mail.outbox[0])
    assert html.count("中欧班列") >= 40
    assert len(html.encode("utf-8")) < 100 * 1024


def test_an_unknown_reader_language_gets_the_default_edition(bilingual_issue, run_on_commit):
    issue, *_ = bilingual_issue
    SubscriberFactory(email="old@example.com", language="xx")
    with run_on_commit():
        issue_start_sending(issue=issue)
    assert mail.outbox[0].subject.endswith("Belt & Road Weekly No. 21")


def test_the_text_part_wraps_chinese_between_characters_and_never_inside_a_link(run_on_commit):
    from newsletter.text_wrap import wrap_text

    url = "https://portal.example.com/zh/news/2026/laos-railway-three-years.html?utm_source=newsletter"
    paragraph = f"中老铁路开通三年来，累计发送旅客超过四千万人次，详见 {url} 的报道。沿线国家经贸往来日益密切。"
    wrapped = wrap_text(paragraph, 40)
    lines = wrapped.splitlines()
    assert url in lines  # the link whole, on its own line
    assert all(
        line == url or len(line.encode("gbk")) <= 40 for line in lines
    )  # 2 columns a character
    assert not any(line.startswith(("，", "。")) for line in lines)  # no line opens with a comma
    assert wrapped.replace("\n", "").replace(" ", "") == paragraph.replace(" ", "")

    issue = IssueFactory(number=31)
    article = ArticleFactory(title="Railway anniversary")
    IssueItemFactory(issue=issue, article=article)
    chinese_version(article, title="中老铁路开通三周年", abstract="中老铁路开通三年来，" * 12)
    SubscriberFactory(email="zh@example.com", language="zh-hans")
    with run_on_commit():
        issue_start_sending(issue=issue)
    body = mail.outbox[0].body
    prose = [line for line in body.splitlines() if "http" not in line]
    assert max(len(line.encode("gbk", "replace")) for line in prose) <= 72
    assert "中老铁路开通三年来，中老铁路" in body.replace("\n", "")
    assert "https://portal.example.com/beltandroad/" in body


def test_a_chinese_variant_is_serialised_once_for_smtp_with_lines_under_998_bytes(bilingual_issue):
    """Lines are cut by bytes: a Chinese edition keeps the fast SMTP path (one MIME per variant)."""
    from newsletter.digest import digest_render
    from newsletter.sending.render import variant_render
    from newsletter.sending.ways_out.smtp import mime_template

    issue, *_ = bilingual_issue
    IssueText.objects.create(
        issue=issue, language="zh-hans", editor_note="本周看点：" + "中亚新能源合作，" * 60
    )
    edition = digest_build(issue, language="zh-hans")
    original = digest_render(edition, edition.section_keys)
    rendered = variant_render(edition, edition.section_keys)
    assert max(len(line.encode()) for line in rendered.html.splitlines()) <= 998
    # The long Chinese note is cut between characters inside a comment: no whitespace
    # appears on the page, the text reads as written.
    assert "<!--\n-->" in rendered.html
    import re

    assert rendered.html.replace("<!--\n-->", "").replace("\n", " ") == re.sub(
        r"\s*\n\s*", " ", original.html
    )
    template = mime_template(rendered, issue=issue)
    assert template.usable and template.longest_line <= 998
