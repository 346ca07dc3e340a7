"""A Chinese-speaking reader in a real browser, from the form to the archive (issue 14).

The browser asks for Chinese (Accept-Language zh-CN); the reader subscribes, confirms
from the email, reads the digest and the web archive, and meets no English they did
not choose. Screenshots go to test-output/<test name>/, the digest at 375 and 600 px.
"""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.utils import timezone

from articles.models import CategoryName
from newsletter.models import Issue, IssueText, Subscriber
from newsletter.services.issues import issue_start_sending
from newsletter.services.subscribers import consent_text_publish
from tests.e2e.test_reader_browser import browser, email_link, shots, site  # noqa: F401
from tests.factories import ArticleFactory, IssueFactory, IssueItemFactory, default_newsletter
from tests.language_steps import chinese_version, english_words
from tests.reader_steps import html_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ZH_CONSENT = "是的，请给我发送《一带一路周刊》。我同意编辑部保存我的电子邮箱地址及所填信息，用于每周发送通讯；我可随时退订。"


@pytest.fixture
def chinese_site(site):
    from articles.models import Category

    names = {
        "Economy & Trade": "经济与贸易",
        "Finance": "金融",
        "Infrastructure": "基础设施",
        "Energy": "能源",
    }
    for category in Category.objects.all():
        CategoryName.objects.create(
            category=category, language="zh-hans", name=names[category.name]
        )
    consent_text_publish(newsletter=default_newsletter(), text=ZH_CONSENT, language="zh-hans")
    return site


def test_a_chinese_reader_subscribes_confirms_and_reads_digest_and_archive_in_chinese(
    browser,
    chinese_site,
    shots,
):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()

    # 1. The portal links to one address; the browser's language picks the Chinese form.
    page.goto(f"{chinese_site}/newsletter/subscribe/")
    assert page.url == f"{chinese_site}/zh-hans/newsletter/subscribe/"
    assert page.evaluate("document.documentElement.lang") == "zh-hans"
    assert english_words(page.content()) == []
    assert page.get_by_label("简体中文").is_checked()
    page.get_by_role("textbox", name="电子邮箱").fill("wang.fang@example.cn")
    page.get_by_label("姓名").fill("王芳")
    page.get_by_label("金融").check()
    page.get_by_label("能源").check()
    page.get_by_label(re.compile("是的，请给我发送")).check()
    shots(page, "01-subscribe")
    page.wait_for_timeout(2100)  # a person takes longer than the minimum fill time
    page.get_by_role("button", name="订阅").click()
    assert page.get_by_role("heading", level=1).inner_text() == "请查看您的收件箱"
    assert english_words(page.content()) == []
    shots(page, "02-check-your-inbox")

    # 2. The confirmation email is Chinese; its page asks for the click, in Chinese.
    (confirmation,) = mail.outbox
    assert confirmation.subject == "确认订阅一带一路周刊"
    assert english_words(html_of(confirmation)) == []
    page.goto(email_link(confirmation, "/newsletter/confirm/"))
    assert english_words(page.content()) == []
    shots(page, "03-confirm")
    page.get_by_role("button", name="确认").click()
    assert "您已订阅" in page.get_by_role("heading", level=1).inner_text()
    shots(page, "04-confirmed")
    reader = Subscriber.objects.get(email="wang.fang@example.cn")
    assert (reader.status, reader.language) == ("active", "zh-hans")
    welcome = mail.outbox[-1]
    assert welcome.subject == "欢迎订阅一带一路周刊"

    # 3. The week's issue, curated once in English, reaches them in Chinese.
    issue = IssueFactory(number=14, status=Issue.Status.DRAFT, sent_at=None)
    from articles.models import Category

    finance = Category.objects.get(name="Finance")
    energy = Category.objects.get(name="Energy")
    stories = [
        (
            "Yuan settlement grows along the Belt and Road",
            "共建“一带一路”国家跨境人民币结算持续增长",
            finance,
        ),
        (
            "Solar plant in Uzbekistan connects to the grid",
            "中企承建的乌兹别克斯坦光伏电站并网发电",
            energy,
        ),
        ("Wind farm in South Africa begins operation", "南非风电场正式投入商业运营", energy),
    ]
    for title, zh_title, category in stories:
        article = ArticleFactory(title=title, category=category, source="Xinhua Silk Road")
        IssueItemFactory(issue=issue, article=article, section=category)
        chinese_version(article, title=zh_title, source="新华丝路")
    IssueText.objects.create(
        issue=issue, language="zh-hans", editor_note="本周看点：**跨境人民币结算**与中亚的新能源。"
    )
    mail.outbox.clear()
    issue_start_sending(issue=issue)
    (digest,) = mail.outbox
    assert digest.subject.endswith("一带一路周刊 第 14 期")
    html = html_of(digest)
    assert english_words(html) == [] and english_words(digest.body) == []
    for width in (375, 600):
        view = context.new_page()
        view.set_viewport_size({"width": width, "height": 900})
        view.set_content(html, wait_until="domcontentloaded")
        assert view.evaluate("document.documentElement.scrollWidth") <= width
        shots(view, f"05-digest-{width}")
        view.close()

    # 4. "View in your browser" and the archive: the Chinese edition on the web.
    page.goto(email_link(digest, "/archive/14/"))
    assert page.url.startswith(f"{chinese_site}/zh-hans/newsletter/archive/14/")
    assert "中企承建的乌兹别克斯坦光伏电站并网发电" in page.content()
    assert english_words(page.content()) == []
    shots(page, "06-issue-page")
    page.get_by_role("link", name="全部各期").click()
    assert page.url.startswith(f"{chinese_site}/zh-hans/newsletter/archive/")
    assert page.get_by_role("heading", level=1).inner_text() == "一带一路周刊往期"
    assert english_words(page.content()) == []
    shots(page, "07-archive")

    # 5. The switcher is the one way to English, and it sticks.
    page.get_by_role("link", name="English").click()
    assert page.url == f"{chinese_site}/newsletter/archive/"
    assert page.get_by_role("heading", level=1).inner_text() == "Past issues of Belt & Road Weekly"
    page.goto(f"{chinese_site}/newsletter/archive/")
    assert page.url == f"{chinese_site}/newsletter/archive/"
    assert timezone.now()
    context.close()
