"""manage.py demo fills an empty site and sends this week's issue; a rerun duplicates nothing."""

from __future__ import annotations

from email import message_from_bytes
from email.header import decode_header, make_header
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from articles.models import Article, Category
from newsletter.models import Delivery, Issue, Subscriber


@pytest.mark.django_db(transaction=True)
def test_demo_sends_one_email_per_reader_and_a_rerun_duplicates_nothing(settings, tmp_path):
    settings.DEBUG = True  # as `make demo` runs it
    settings.EMAIL_BACKEND = "newsletter.backends.OutboxBackend"
    settings.EMAIL_OUTBOX_DIR = tmp_path / "outbox"
    out = StringIO()
    call_command("demo", stdout=out)
    text = out.getvalue()
    assert Article.objects.count() >= 12
    assert Category.objects.count() >= 4
    assert Subscriber.objects.filter(status="active").count() == 50
    issue = Issue.objects.get()
    assert issue.status == Issue.Status.SENT
    assert Delivery.objects.filter(status="sent").count() == 50
    emails = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(emails) == 50
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in emails[0].read_bytes()
    assert get_user_model().objects.filter(username="admin", is_superuser=True).exists()
    assert "50 sent, 0 skipped, 0 failed" in text
    assert f"50 .eml files in {tmp_path / 'outbox'}/" in text
    # Issue 14: the demo is bilingual. Chinese versions paired with the English stories,
    # a share of readers in Chinese, both editions sent from the one curated issue.
    assert Article.objects.filter(language="zh-hans", translation_of__isnull=False).count() == 14
    assert issue.items.count() == 16  # curated once: only the originals are items
    chinese_readers = Subscriber.objects.filter(language="zh-hans").count()
    assert 10 <= chinese_readers <= 25
    assert "zh-hans: 14 of 16 stories" in text
    assert f"{chinese_readers} of them reading in Chinese" in text
    messages = [message_from_bytes(path.read_bytes()) for path in emails]
    subjects = [str(make_header(decode_header(m["Subject"]))) for m in messages]
    assert sum(s.startswith("一带一路周刊 第") for s in subjects) == chinese_readers
    assert sum(s.startswith("Belt & Road Weekly No.") for s in subjects) == 50 - chinese_readers
    assert "user 'admin', password 'belt-and-road'" in text
    assert "make serve" in text

    again = StringIO()
    call_command("demo", stdout=again)
    assert Article.objects.count() == 30  # 16 stories, 14 of them in Chinese too
    assert Subscriber.objects.count() == 50
    assert Issue.objects.count() == 1
    assert Delivery.objects.count() == 50
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 50
    assert "0 created, 16 updated." in again.getvalue()
    assert "14 Chinese versions, 14 paired" in again.getvalue()
    assert "cannot be sent again" in again.getvalue()


@pytest.mark.django_db
def test_demo_refuses_to_run_in_production(settings):
    settings.DEBUG = False
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="runs only with DEBUG=true"):
        call_command("demo")
