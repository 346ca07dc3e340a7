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
from newsletter.services.issues import ITEM_DISPLAY_ORDER, issue_compile
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


# --- The scheduled compile (Celery beat) and what it tells the editors ------------------


@pytest.fixture
def editors():
    from tests.factories import StaffUserFactory

    return [
        StaffUserFactory(username="amina", groups=["Editors"]),
        StaffUserFactory(username="bo", groups=["Editors"]),
    ]


def run_compile_tick(moment: datetime) -> None:
    from newsletter.tasks import compile_due_issues

    with time_machine.travel(moment, tick=False):
        compile_due_issues.delay()


def test_the_beat_runs_the_compile_and_send_ticks(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"newsletter.tasks.compile_due_issues", "newsletter.tasks.send_due_issues"} <= tasks


def test_the_scheduled_compile_waits_for_the_newsletters_weekday_and_time(editors):
    from django.core import mail

    ArticleFactory(published_at=at(2))
    run_compile_tick(at(0.01))  # Friday 08:45 in Shanghai: not yet
    assert Issue.objects.count() == 0 and mail.outbox == []
    run_compile_tick(at(-0.01))  # Friday 09:14
    issue = Issue.objects.get()
    assert (issue.week, issue.status, issue.scheduled_at) == ("2026-W48", "draft", None)


def test_the_send_time_is_read_in_the_newsletters_time_zone(editors):
    newsletter = default_newsletter()
    newsletter.timezone = "Europe/Athens"  # Friday 09:00 in Athens is 15:00 in Shanghai
    newsletter.save()
    ArticleFactory(published_at=at(2))
    run_compile_tick(at(-0.01))
    assert Issue.objects.count() == 0
    run_compile_tick(datetime(2026, 11, 27, 9, 1, tzinfo=ZoneInfo("Europe/Athens")))
    assert Issue.objects.get().week == "2026-W48"


def test_the_editors_get_an_email_linking_to_the_draft(editors, site):
    from django.core import mail

    from tests.factories import StaffUserFactory

    StaffUserFactory(username="outsider")  # staff, but not an editor
    StaffUserFactory(username="gone", groups=["Editors"], is_active=False)
    ArticleFactory(title="Port upgrade in Piraeus", published_at=at(2))
    run_compile_tick(at(-0.01))
    issue = Issue.objects.get()
    assert sorted(m.to[0] for m in mail.outbox) == [
        "amina@newsroom.example.org",
        "bo@newsroom.example.org",
    ]
    message = mail.outbox[0]
    assert message.subject.startswith("For approval: Belt & Road Weekly No. 1 · Week 48, 2026")
    link = f"https://weekly.example.org/admin/newsletter/issue/{issue.pk}/change/"
    assert link in message.body
    assert "Port upgrade in Piraeus" in message.body
    assert "waits for approval" in message.body
    assert link in message.alternatives[0][0]


def test_a_second_tick_in_the_same_week_does_nothing_more(editors):
    from django.core import mail

    ArticleFactory(published_at=at(2))
    run_compile_tick(at(-0.01))
    ArticleFactory(published_at=at(1))
    run_compile_tick(at(-0.05))
    assert Issue.objects.count() == 1 and len(mail.outbox) == 2
    assert Issue.objects.get().items.count() == 1


def test_an_empty_week_makes_no_issue_and_tells_the_editors_once(editors):
    from django.core import mail

    from newsletter.models import EmptyWeek

    run_compile_tick(at(-0.01))
    run_compile_tick(at(-0.05))
    run_compile_tick(at(-1))
    assert Issue.objects.count() == 0
    assert len(mail.outbox) == 2  # one per editor, once
    assert mail.outbox[0].subject == (
        "No issue this week: Belt & Road Weekly found no new articles for 2026-W48"
    )
    assert "Compile this week's issue" in mail.outbox[0].body
    assert EmptyWeek.objects.filter(week="2026-W48").count() == 1
    # The next week is a new week: it is compiled (and reported) again.
    ArticleFactory(published_at=at(-3))
    run_compile_tick(at(-7.01))
    assert Issue.objects.get().week == "2026-W49"


def test_a_cancelled_week_is_not_compiled_again_by_the_scheduler(editors):
    ArticleFactory(published_at=at(2))
    run_compile_tick(at(-0.01))
    Issue.objects.update(status=Issue.Status.CANCELLED)
    run_compile_tick(at(-0.05))
    assert Issue.objects.count() == 1


def test_under_send_unless_held_the_draft_is_scheduled_after_the_review_time(editors):
    from django.core import mail

    newsletter = default_newsletter()
    newsletter.approval_policy = newsletter.Approval.AUTO
    newsletter.review_hours = 3
    newsletter.save()
    ArticleFactory(published_at=at(2))
    moment = at(-0.01)
    run_compile_tick(moment)
    issue = Issue.objects.get()
    assert issue.status == Issue.Status.SCHEDULED
    assert issue.scheduled_at == moment + timedelta(hours=3)
    assert mail.outbox[0].subject.startswith("Ready to go: Belt & Road Weekly No. 1")
    assert "unless an editor holds it" in mail.outbox[0].body
    assert "Friday 27 November, 12:14 (Asia/Shanghai)" in mail.outbox[0].body


def test_recompiling_keeps_the_editors_order():
    section = CategoryFactory(name="Energy")
    a, _b, c = (ArticleFactory(published_at=at(days), category=section) for days in (4, 3, 2))
    week = IsoWeek.parse("2026-W48")
    issue = issue_compile(newsletter=default_newsletter(), week=week, now=at(1)).issue
    issue.items.filter(article=a).update(position=30)
    issue.items.filter(article=c).update(position=5)
    shown = list(issue.items.order_by(*ITEM_DISPLAY_ORDER).values_list("article_id", flat=True))
    assert shown[0] == c.pk and shown[-1] == a.pk
    new = ArticleFactory(published_at=at(0.5), category=section)
    issue_compile(newsletter=default_newsletter(), week=week, now=at(-1))
    # The editor's order stands, renumbered 10, 20, 30… as shown; the new story joins.
    after = list(issue.items.order_by(*ITEM_DISPLAY_ORDER).values_list("article_id", "position"))
    assert [pk for pk, _ in after if pk != new.pk] == shown
    assert [position for _, position in after] == [10, 20, 30, 40]


def test_positions_follow_the_order_shown_within_a_section():
    section = CategoryFactory(name="Finance")
    older, newer = (ArticleFactory(published_at=at(days), category=section) for days in (4, 3))
    issue = issue_compile(
        newsletter=default_newsletter(), week=IsoWeek.parse("2026-W48"), now=at(1)
    ).issue
    rows = list(issue.items.order_by(*ITEM_DISPLAY_ORDER).values_list("article_id", "position"))
    assert rows == [(newer.pk, 10), (older.pk, 20)]
