"""compile_issue drafts a week's issue from published articles no earlier issue carried."""

from __future__ import annotations

from datetime import datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import CommandError, call_command

from articles.models import Article
from newsletter.models import Issue
from newsletter.services.issues import issue_compile
from newsletter.weeks import IsoWeek, issue_window
from tests.factories import ArticleFactory, CategoryFactory, default_newsletter

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")
# The default newsletter goes out on Fridays at 09:00 Shanghai time; week 48 of 2026
# ends at Friday 27 November 09:00, so its window is 20 Nov 09:00 to 27 Nov 09:00.
FRIDAY_SEND = datetime(2026, 11, 27, 9, 0, tzinfo=SHANGHAI)


def at(days_before_send: float) -> datetime:
    return FRIDAY_SEND - timedelta(days=days_before_send)


def test_the_window_is_the_seven_days_before_the_send_moment():
    start, end = issue_window(default_newsletter(), IsoWeek.parse("2026-W48"))
    assert (start, end) == (FRIDAY_SEND - timedelta(days=7), FRIDAY_SEND)


def test_it_takes_only_published_articles_inside_the_window():
    inside = ArticleFactory(published_at=at(1))
    ArticleFactory(published_at=at(7.5))  # before the window
    ArticleFactory(published_at=at(-0.5))  # after the send moment
    ArticleFactory(published_at=at(2), status=Article.Status.DRAFT)
    result = issue_compile(
        newsletter=default_newsletter(), week=IsoWeek.parse("2026-W48"), now=at(-1)
    )
    assert result.created
    assert [item.article for item in result.issue.items.all()] == [inside]
    assert result.issue.number == 1
    assert result.issue.week == "2026-W48"
    assert result.issue.status == Issue.Status.DRAFT


def test_it_groups_sections_by_category_position_and_ranks_by_priority_then_date():
    energy = CategoryFactory(name="Energy", position=2)
    finance = CategoryFactory(name="Finance", position=1)
    old = ArticleFactory(category=finance, published_at=at(5))
    new = ArticleFactory(category=finance, published_at=at(1))
    lead = ArticleFactory(category=finance, published_at=at(6), priority=10)
    solar = ArticleFactory(category=energy, published_at=at(2))
    result = issue_compile(
        newsletter=default_newsletter(), week=IsoWeek.parse("2026-W48"), now=at(-1)
    )
    from newsletter.digest import digest_build

    digest = digest_build(result.issue)
    assert [s.title for s in digest.sections] == ["Finance", "Energy"]
    assert [i.article for i in digest.sections[0].items] == [lead, new, old]
    assert [i.article for i in digest.sections[1].items] == [solar]


def test_no_article_is_carried_by_two_issues():
    first = ArticleFactory(published_at=at(8))  # in week 47's window
    issue_compile(newsletter=default_newsletter(), week=IsoWeek.parse("2026-W47"), now=at(-1))
    ArticleFactory(published_at=at(1))
    # Move the first article into week 48 too: it must not come back.
    Article.objects.filter(pk=first.pk).update(published_at=at(3))
    result = issue_compile(
        newsletter=default_newsletter(), week=IsoWeek.parse("2026-W48"), now=at(-1)
    )
    assert first.pk not in [item.article_id for item in result.issue.items.all()]
    assert result.issue.items.count() == 1
    assert result.issue.number == 2


def test_an_empty_week_makes_no_issue():
    result = issue_compile(
        newsletter=default_newsletter(), week=IsoWeek.parse("2026-W48"), now=at(-1)
    )
    assert result.issue is None
    assert "no issue made" in result.message
    assert Issue.objects.count() == 0


def test_recompiling_a_draft_keeps_editors_work_and_adds_new_articles():
    a, b = ArticleFactory(published_at=at(4)), ArticleFactory(published_at=at(3))
    issue = issue_compile(
        newsletter=default_newsletter(), week=IsoWeek.parse("2026-W48"), now=at(1)
    ).issue
    item_a = issue.items.get(article=a)
    item_a.abstract_override, item_a.pinned = "Editor's abstract", True
    item_a.save()
    issue.items.filter(article=b).update(removed=True)
    c = ArticleFactory(published_at=at(0.5))
    result = issue_compile(
        newsletter=default_newsletter(), week=IsoWeek.parse("2026-W48"), now=at(-1)
    )
    assert result.issue == issue and not result.created and result.added == 1
    assert issue.items.get(article=a).abstract == "Editor's abstract"
    assert issue.items.get(article=b).removed
    assert issue.items.filter(article=c).exists()


def test_a_sent_issue_is_left_alone():
    ArticleFactory(published_at=at(2))
    issue = issue_compile(
        newsletter=default_newsletter(), week=IsoWeek.parse("2026-W48"), now=at(1)
    ).issue
    Issue.objects.filter(pk=issue.pk).update(status=Issue.Status.SENT)
    ArticleFactory(published_at=at(0.5))
    result = issue_compile(
        newsletter=default_newsletter(), week=IsoWeek.parse("2026-W48"), now=at(-1)
    )
    assert "is sent; left as it is" in result.message
    assert issue.items.count() == 1


def test_the_command_defaults_to_the_current_week_and_lists_the_items():
    ArticleFactory(
        title="Port upgrade in Piraeus",
        published_at=at(1),
        category=CategoryFactory(name="Infrastructure"),
    )
    out = StringIO()
    with time_machine.travel(at(-0.1), tick=False):
        call_command("compile_issue", stdout=out)
    assert "Drafted No. 1 for 2026-W48: 1 new articles." in out.getvalue()
    assert "[Infrastructure] Port upgrade in Piraeus" in out.getvalue()


def test_the_command_refuses_a_bad_week_or_newsletter():
    with pytest.raises(CommandError, match="is not an ISO week: write it as YYYY-Www"):
        call_command("compile_issue", "--week", "2026-48")
    with pytest.raises(CommandError, match="is not a week of 2026"):
        call_command("compile_issue", "--week", "2026-W60")
    with pytest.raises(CommandError, match="No newsletter with slug 'nope'"):
        call_command("compile_issue", "--newsletter", "nope")
