"""manage.py demo sends last week's issue, leaves this week's draft to curate (its
articles fetched from a demo feed source by the scheduler's task); a rerun duplicates
nothing."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from articles.models import Article, Category, FeedFetch, FeedSource
from newsletter.models import Delivery, Issue, Subscriber


@pytest.mark.django_db(transaction=True)
def test_demo_sends_last_weeks_issue_and_leaves_this_weeks_draft(settings, tmp_path):
    settings.DEBUG = True  # as `make demo` runs it
    settings.EMAIL_BACKEND = "newsletter.backends.OutboxBackend"
    settings.EMAIL_OUTBOX_DIR = tmp_path / "outbox"
    settings.FEED_FILE_DIR = str(tmp_path / "feeds")
    out = StringIO()
    call_command("demo", stdout=out)
    text = out.getvalue()
    assert Article.objects.count() == 16
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
    assert "user 'admin', password 'belt-and-road'" in text
    assert "make serve" in text

    again = StringIO()
    call_command("demo", stdout=again)
    assert Article.objects.count() == 16
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
