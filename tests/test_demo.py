"""manage.py demo sends last week's issue, leaves this week's draft to curate (its
articles fetched from a demo feed source by the scheduler's task); a rerun duplicates
nothing."""

from __future__ import annotations

import re
from email import message_from_bytes
from email.header import decode_header, make_header
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from articles.models import Article, Category, FeedFetch, FeedSource
from newsletter.models import Delivery, Issue, Subscriber
from tests.factories import staff_group


@pytest.mark.django_db(transaction=True)
def test_demo_sends_last_weeks_issue_and_leaves_this_weeks_draft(settings, tmp_path):
    settings.DEBUG = True  # as `make demo` runs it
    settings.EMAIL_BACKEND = "newsletter.backends.OutboxBackend"
    settings.EMAIL_OUTBOX_DIR = tmp_path / "outbox"
    settings.FEED_FILE_DIR = str(tmp_path / "feeds")
    for group in ("Editors", "Publishers"):  # as migrate leaves them (a flush removed them)
        staff_group(group)
    out = StringIO()
    call_command("demo", stdout=out)
    text = out.getvalue()
    assert Article.objects.count() == 30  # 16 stories, 14 of them in Chinese too
    assert Category.objects.filter(enabled=True).count() >= 4
    assert Subscriber.objects.filter(status="active").count() == 50
    sent, draft = Issue.objects.order_by("number")
    assert sent.status == Issue.Status.SENT
    assert draft.status == Issue.Status.DRAFT and draft.week > sent.week
    assert draft.items.count() == 8 and sent.items.count() == 8
    assert not set(draft.items.values_list("article_id", flat=True)) & set(
        sent.items.values_list("article_id", flat=True)
    )
    delivered = Delivery.objects.filter(issue=sent, status="sent").count()
    assert delivered + Delivery.objects.filter(issue=sent, status="skipped").count() == 50
    emails = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(emails) == delivered > 0
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in emails[0].read_bytes()
    # The draft's articles came through the demo feed source, a file in FEED_FILE_DIR.
    source = FeedSource.objects.get()
    assert source.url == "file:portal-demo.json" and source.is_active
    fetch = FeedFetch.objects.get()
    assert (fetch.new, fetch.refused, fetch.error) == (8, 0, "")
    admin = get_user_model().objects.get(username="admin", is_superuser=True)
    assert sorted(admin.groups.values_list("name", flat=True)) == ["Editors", "Publishers"]
    assert f"{delivered} sent," in text
    assert "8 articles to curate" in text
    # Issue 14: the demo is bilingual. Chinese versions paired with the English stories,
    # a share of readers in Chinese, both editions sent from the one curated issue.
    assert Article.objects.filter(language="zh-hans", translation_of__isnull=False).count() == 14
    assert not sent.items.filter(article__language="zh-hans").exists()  # curated once
    chinese_readers = Subscriber.objects.filter(language="zh-hans").count()
    assert 10 <= chinese_readers <= 25
    assert re.search(r"zh-hans: [1-8] of 8 stories", text)
    assert f"{chinese_readers} of them reading in Chinese" in text
    messages = [message_from_bytes(path.read_bytes()) for path in emails]
    subjects = [str(make_header(decode_header(m["Subject"]))) for m in messages]
    chinese_sent = Delivery.objects.filter(
        issue=sent, status="sent", subscriber__language="zh-hans"
    ).count()
    assert chinese_sent > 0
    assert sum("一带一路周刊 第" in s for s in subjects) == chinese_sent
    assert sum("Belt & Road Weekly No." in s for s in subjects) == delivered - chinese_sent
    assert "user 'admin', password 'belt-and-road'" in text
    assert "make serve" in text

    again = StringIO()
    call_command("demo", stdout=again)
    assert Article.objects.count() == 30  # 16 stories, 14 of them in Chinese too
    assert Subscriber.objects.count() == 50
    assert Issue.objects.count() == 2
    assert Delivery.objects.count() == 50
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == delivered
    assert "cannot be sent again" in again.getvalue()


@pytest.mark.django_db
def test_demo_refuses_to_run_in_production(settings):
    settings.DEBUG = False
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="runs only with DEBUG=true"):
        call_command("demo")
