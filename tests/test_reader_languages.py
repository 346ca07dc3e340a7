"""Readers choose their language, and every page and email speaks it (issue 14)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from inbox.models import Ticket
from inbox.services import ticket_reply
from newsletter.models import Issue, Repermission, Subscriber
from newsletter.services.issues import issue_start_sending
from newsletter.services.subscribers import Profile, consent_text_publish, subscriber_signup
from newsletter.services.sunset import repermission_send
from newsletter.tokens import reader_tokens
from tests.factories import (
    ArticleFactory,
    IssueFactory,
    IssueItemFactory,
    StaffUserFactory,
    SubscriberFactory,
    default_newsletter,
)
from tests.inbox_steps import ask_data
from tests.language_steps import chinese_version, english_words
from tests.reader_steps import client, html_of, link, sent_to, signup_data  # noqa: F401

pytestmark = pytest.mark.django_db

ZH_SUBSCRIBE = "/zh-hans/newsletter/subscribe/"
CHROME_ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.6"}
ZH_CONSENT = "我同意《一带一路周刊》编辑部保存我的电子邮箱地址及我提供的信息，用于每周向我发送通讯，并可随时退订。"


@pytest.fixture
def zh_consent():
    default_newsletter()
    return consent_text_publish(
        newsletter=default_newsletter(), text=ZH_CONSENT, language="zh-hans"
    )


def test_the_form_follows_the_browsers_language_and_offers_each_language(client):
    response = client.get("/newsletter/subscribe/", **CHROME_ZH)
    assert response.status_code == 302 and response["Location"] == ZH_SUBSCRIBE
    assert "Accept-Language" in response["Vary"]
    page = client.get(ZH_SUBSCRIBE, **CHROME_ZH).content.decode()
    assert '<html lang="zh-hans">' in page
    assert "订阅" in page and "通讯语言" in page
    assert re.search(r'value="zh-hans"[^>]*checked', page), "Chinese is not preselected"
    assert 'value="en"' in page and ">English<" in page
    english = client.get("/newsletter/subscribe/").content.decode()
    assert re.search(r'value="en"[^>]*checked', english)


def test_the_switcher_keeps_the_readers_choice_over_the_browsers(client):
    response = client.get(ZH_SUBSCRIBE + "?language=en", **CHROME_ZH)
    assert response.status_code == 302 and response["Location"] == "/newsletter/subscribe/"
    assert response.cookies["brw_language"].value == "en"
    page = client.get("/newsletter/subscribe/", **CHROME_ZH)
    assert page.status_code == 200 and "Subscribe to" in page.content.decode()


def test_a_chinese_signup_meets_no_english_from_form_to_welcome(client, zh_consent):
    page = client.get(ZH_SUBSCRIBE).content.decode()
    assert ZH_CONSENT in page
    assert english_words(page) == []
    response = client.post(
        ZH_SUBSCRIBE,
        signup_data(
            email="wang.fang@example.cn",
            name="王芳",
            language="zh-hans",
            consent_version=str(zh_consent.version),
        ),
    )
    assert response.status_code == 200, response.content.decode()[-3000:]
    done = response.content.decode()
    assert "请查看您的收件箱" in done and english_words(done) == []
    reader = Subscriber.objects.get(email="wang.fang@example.cn")
    assert reader.language == "zh-hans"
    assert reader.consent_records.get().consent_text == zh_consent
    [confirmation] = sent_to("wang.fang@example.cn")
    assert confirmation.subject == "确认订阅一带一路周刊"
    assert english_words(html_of(confirmation)) == []
    assert english_words(confirmation.body) == []
    confirm_url = link(confirmation, "/confirm/")
    confirm_page = client.get(confirm_url).content.decode()
    assert "确认" in confirm_page and english_words(confirm_page) == []
    client.post(confirm_url)
    [welcome] = [m for m in sent_to("wang.fang@example.cn") if m is not confirmation]
    assert welcome.subject == "欢迎订阅一带一路周刊"
    assert english_words(html_of(welcome)) == []


def test_preferences_change_the_language_of_the_page_and_of_every_email(
    client,
    run_on_commit,
):
    reader = SubscriberFactory(email="li@example.com", language="en")
    url = f"/newsletter/preferences/{reader_tokens.make_token(reader, 'preferences')}/"
    # A link from the reader's own email speaks their language, whatever the browser says.
    page = client.get(url, follow=True, **CHROME_ZH).content.decode()
    assert "Your preferences" in page
    response = client.post(
        url,
        {
            "action": "profile",
            "name": "Li",
            "organisation": "",
            "country": "",
            "language": "zh-hans",
        },
    )
    assert response.status_code == 200
    assert "已保存" in response.content.decode()
    reader.refresh_from_db()
    assert reader.language == "zh-hans"
    with run_on_commit():
        subscriber_signup(
            newsletter=reader.newsletter,
            email=reader.email,
            profile=Profile(),
            consent_text=reader.newsletter.consent_texts.first(),
            ip=None,
            user_agent="",
            form="test",
        )
    [already] = sent_to("li@example.com")
    assert already.subject == "您已订阅一带一路周刊"


def test_the_re_permission_email_is_in_the_readers_language():
    reader = SubscriberFactory(email="zh@example.com", language="zh-hans")
    repermission = Repermission.objects.create(subscriber=reader)
    repermission_send(repermission=repermission)
    [email] = mail.outbox
    assert email.subject == "您还想继续收到一带一路周刊吗？"
    assert "是的，继续发送" in html_of(email)
    assert english_words(html_of(email)) == []


def test_a_question_asked_in_chinese_is_acknowledged_and_answered_in_chinese(
    client,
    run_on_commit,
):
    response = client.post("/zh-hans/newsletter/ask/", ask_data(email="zhao@example.cn"))
    assert response.status_code == 200, response.content.decode()[-2000:]
    ticket = Ticket.objects.get(email="zhao@example.cn")
    assert ticket.language == "zh-hans"
    [ack] = sent_to("zhao@example.cn")
    assert ack.subject.startswith("我们已收到您的问题")
    assert english_words(html_of(ack)) == []
    editor = StaffUserFactory(first_name="Min", last_name="Chen", groups=["Editors"])
    with run_on_commit():
        ticket_reply(ticket=ticket, author=editor, body="您好，报告在“往期”页面。")
    answer = sent_to("zhao@example.cn")[-1]
    assert answer.subject.startswith("回复：您的问题 Q-")
    assert "您好，报告在“往期”页面。" in answer.body


@pytest.fixture
def sent_bilingual_issue():
    issue = IssueFactory(number=9, status=Issue.Status.SENT, sent_at=timezone.now())
    first = ArticleFactory(title="Solar plant in Uzbekistan connects to the grid")
    IssueItemFactory(issue=issue, article=first, section=first.category)
    chinese_version(first, title="乌兹别克斯坦光伏电站并网发电")
    second = ArticleFactory(title="Hydropower talks resume in Nepal")
    IssueItemFactory(issue=issue, article=second, section=second.category)
    return issue


def test_the_archive_and_issue_pages_exist_per_language_with_hreflang(
    client,
    sent_bilingual_issue,
):
    page = client.get("/zh-hans/newsletter/archive/").content.decode()
    assert '<html lang="zh-hans">' in page
    assert "一带一路周刊往期" in page and "乌兹别克斯坦光伏电站并网发电" in page
    assert (
        '<link rel="alternate" hreflang="en" href="http://localhost:8000/newsletter/archive/">'
        in page
    )
    assert (
        '<link rel="alternate" hreflang="zh-hans" href="http://localhost:8000/zh-hans/newsletter/archive/">'
        in page
    )
    assert 'hreflang="x-default"' in page
    assert 'href="/zh-hans/newsletter/archive/?language=en"' in page  # the switcher
    issue_page = client.get("/zh-hans/newsletter/archive/9/").content.decode()
    assert "乌兹别克斯坦光伏电站并网发电" in issue_page
    assert "原文（English）" in issue_page  # the story with no Chinese version, marked
    assert 'lang="en"' in issue_page
    english = client.get("/newsletter/archive/9/").content.decode()
    assert "Solar plant in Uzbekistan" in english and "光伏" not in english


def test_each_languages_rss_carries_its_edition(client, sent_bilingual_issue):
    feed = client.get("/zh-hans/newsletter/feed/").content.decode()
    assert "<language>zh-hans</language>" in feed
    assert "一带一路周刊 第 9 期" in feed and "乌兹别克斯坦光伏电站并网发电" in feed
    assert "http://localhost:8000/zh-hans/newsletter/archive/9/" in feed
    english = client.get("/newsletter/feed/").content.decode()
    assert "<language>en</language>" in english and "光伏" not in english


def test_a_chinese_digest_has_no_english_words_a_reader_did_not_choose(run_on_commit):
    issue = IssueFactory(number=11, sent_at=timezone.now() - timedelta(days=1))
    article = ArticleFactory(title="Solar plant in Uzbekistan connects to the grid", source="")
    IssueItemFactory(issue=issue, article=article)
    chinese_version(article, title="乌兹别克斯坦光伏电站并网发电", source="新华丝路")
    from articles.models import CategoryName

    CategoryName.objects.create(category=article.category, language="zh-hans", name="能源")
    SubscriberFactory(email="zh@example.com", language="zh-hans")
    with run_on_commit():
        issue_start_sending(issue=issue)
    [email] = mail.outbox
    assert english_words(html_of(email)) == []
    assert english_words(email.body) == []
