"""The results report of each issue and the list-health report, as an editor sees them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from anymail.signals import AnymailTrackingEvent
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from newsletter.models import ConsentRecord, Delivery, Issue, TrackingEvent
from newsletter.selectors.metrics import complaint_level, issue_report
from newsletter.services.esp_events import tracking_event_store
from newsletter.services.list_hygiene import tracking_events_apply
from tests.conftest import SENT_AT
from tests.factories import (
    ArticleFactory,
    DeliveryFactory,
    IssueFactory,
    SubscriberFactory,
)

pytestmark = pytest.mark.django_db
SENT = SENT_AT  # when sent_issue went out
ARTICLE = "https://portal.example.com/beltandroad/gwadar.html"


@pytest.fixture(autouse=True)
def _webhooks_on(settings):
    """Opens and clicks can only be reported when the ESP's webhooks are set up."""
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "hook:s3cret"}


@pytest.fixture
def editor(client):
    user = User.objects.create_user("editor", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_issue"))
    client.force_login(user)
    return user


def event(delivery: Delivery, event_type: str, **fields) -> TrackingEvent:
    return TrackingEvent.objects.create(
        esp="mailgun",
        event_type=event_type,
        delivery=delivery,
        message_id=delivery.esp_message_id,
        processed_at=SENT,
        **fields,
    )


def complain(delivery: Delivery) -> None:
    """Have the ESP report a spam complaint about this delivery, and apply it."""
    reported = AnymailTrackingEvent(
        event_type="complained",
        event_id=f"complaint-{delivery.pk}",
        message_id=delivery.esp_message_id,
        recipient=delivery.subscriber.email,
        metadata={"delivery": delivery.pk, "subscriber": delivery.subscriber_id},
        esp_event={},
    )
    tracking_event_store(event=reported, esp_name="mailgun")
    assert tracking_events_apply().applied == 1


@pytest.fixture
def issue_with_results(sent_issue) -> Issue:
    """The sent issue (No. 48) with results: 20 readers; 2 bounced, 1 complained, 8 opened,
    3 clicked, 2 unsubscribed."""
    ArticleFactory(title="Gwadar port opens its second berth", url=ARTICLE)
    rows = DeliveryFactory.create_batch(17, issue=sent_issue, sent_at=SENT)
    rows += DeliveryFactory.create_batch(2, issue=sent_issue, status=Delivery.Status.FAILED)
    rows.append(DeliveryFactory(issue=sent_issue, status=Delivery.Status.SKIPPED))
    hard, soft, complained = rows[0], rows[1], rows[2]
    Delivery.objects.filter(pk__in=[hard.pk, soft.pk]).update(status=Delivery.Status.BOUNCED)
    Delivery.objects.filter(pk=complained.pk).update(status=Delivery.Status.COMPLAINED)
    event(hard, "bounced", bounce_kind="hard")
    event(soft, "bounced", bounce_kind="soft")
    event(complained, "complained", outcome="complained")
    for n, row in enumerate(rows[3:11]):
        Delivery.objects.filter(pk=row.pk).update(
            opened_at=SENT + timedelta(days=n % 2), open_count=2
        )
    for row in rows[3:6]:
        Delivery.objects.filter(pk=row.pk).update(clicked_at=SENT + timedelta(hours=1))
        event(row, "clicked", click_url=f"{ARTICLE}?utm_source=newsletter&utm_campaign=brw-48")
    token_url = "http://localhost:8000/newsletter/unsubscribe/1-secrettoken123/"
    event(rows[6], "clicked", click_url=token_url)
    with time_machine.travel(SENT - timedelta(days=1)):  # before the issue: not counted
        ConsentRecord.objects.create(
            subscriber=rows[12].subscriber, action="withdraw", method="link"
        )
    for row, method in ((rows[13], "one-click"), (rows[14], "mailgun unsubscribe")):
        with time_machine.travel(SENT + timedelta(days=2)):
            ConsentRecord.objects.create(
                subscriber=row.subscriber, action="withdraw", method=method
            )
    return sent_issue


def test_it_counts_what_an_issue_did(issue_with_results):
    report = issue_report(issue=issue_with_results)
    assert (report.recipients, report.accepted, report.delivered) == (20, 17, 15)
    assert (report.bounced, report.hard_bounces, report.soft_bounces) == (2, 1, 1)
    assert (report.complained, report.failed, report.skipped) == (1, 2, 1)
    assert (report.opened, report.clicked, report.opens) == (8, 3, 16)
    assert report.bounce_rate == pytest.approx(2 / 17)
    assert report.open_rate == pytest.approx(8 / 15)
    assert report.click_rate == pytest.approx(3 / 15)
    assert report.unsubscribe_methods == {"one-click": 1, "mailgun unsubscribe": 1}
    assert report.complaint_level == "over-limit"  # 1 in 15 is far above 0.3 %


def test_unsubscribes_after_the_next_issue_went_out_belong_to_the_next_issue(issue_with_results):
    IssueFactory(number=49, status=Issue.Status.SENT, send_started_at=SENT + timedelta(days=1))
    assert issue_report(issue=issue_with_results).unsubscribed == 0


def test_the_results_page_shows_rates_top_articles_and_a_chart_without_reader_tokens(
    issue_with_results, editor, client
):
    response = client.get(reverse("newsletter_reports:issue", args=[issue_with_results.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Results of No. 48" in page
    assert "53.3 %" in page  # open rate, 8 of 15 delivered
    assert "20.0 %" in page  # click rate
    assert "11.8 %" in page  # bounce rate, 2 of 17 accepted
    assert "1 hard · 1 soft" in page
    assert "Gwadar port opens its second berth" in page
    assert "Unsubscribe link" in page and "secrettoken123" not in page
    assert "<svg" in page and "opened: " in page
    assert "At or above the 0.3 % limit" in page


def test_the_reports_are_for_staff_who_may_view_issues(issue_with_results, client):
    url = reverse("newsletter_reports:issue", args=[issue_with_results.pk])
    assert client.get(url).status_code == 302  # to the admin login
    client.force_login(User.objects.create_user("intern", password="x", is_staff=True))
    assert client.get(url).status_code == 403
    assert client.get(reverse("newsletter_reports:health")).status_code == 403


def test_the_issue_report_takes_the_same_queries_for_a_bigger_issue(
    issue_with_results, django_assert_max_num_queries
):
    with django_assert_max_num_queries(12) as small:  # possible duplicates: a counter, no query
        issue_report(issue=issue_with_results)
    DeliveryFactory.create_batch(40, issue=issue_with_results, sent_at=SENT)
    with django_assert_max_num_queries(len(small.captured_queries)):
        issue_report(issue=issue_with_results)


@pytest.mark.parametrize(
    ("rate", "level"),
    [
        (None, "none"),
        (0.0, "ok"),
        (0.00079, "ok"),
        (0.0008, "near"),
        (0.001, "over-target"),
        (0.003, "over-limit"),
    ],
)
def test_complaint_levels_follow_the_bulk_sender_thresholds(rate, level):
    assert complaint_level(rate) == level


@time_machine.travel(datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
def test_list_health_shows_each_week_and_warns_near_the_complaint_target(editor, client):
    this_week = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    last_week = this_week - timedelta(days=7)
    issue = IssueFactory(number=50, status=Issue.Status.SENT, send_started_at=last_week)
    for _ in range(3):
        with time_machine.travel(last_week):
            SubscriberFactory()
    rows = DeliveryFactory.create_batch(1200, issue=issue, sent_at=last_week)
    with time_machine.travel(last_week + timedelta(hours=5)):
        complain(rows[0])  # as the ESP's webhook and the event applier would
    response = client.get(reverse("newsletter_reports:health"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Complaint rate, last 30 days" in page
    assert "0.08 %" in page and "Close to the 0.1 % target" in page
    assert 'class="warning"' in page
    assert "No. 50" in page and reverse("newsletter_reports:issue", args=[issue.pk]) in page
    health_rows = response.context["report"].weeks
    week = next(w for w in health_rows if w.start == last_week.date())
    assert (week.complained, week.delivered, week.complaints) == (1, 1200, 1)
    assert week.new == 3
    assert "0.3 % limit" in page  # the threshold line on the chart


def test_the_ledger_lists_link_to_the_reports(issue_with_results, client):
    client.force_login(User.objects.create_superuser("chief", password="x"))
    deliveries = client.get(reverse("admin:newsletter_delivery_changelist")).content.decode()
    assert reverse("newsletter_reports:health") in deliveries
    assert reverse("newsletter_reports:issue", args=[issue_with_results.pk]) in deliveries
    events = client.get(reverse("admin:newsletter_trackingevent_changelist"))
    assert events.status_code == 200
    assert client.get(reverse("admin:newsletter_repermission_changelist")).status_code == 200


def test_rates_say_not_tracked_when_no_open_or_click_can_be_reported(
    issue_with_results, editor, client, settings
):
    url = reverse("newsletter_reports:issue", args=[issue_with_results.pk])
    assert "53.3 %" in client.get(url).content.decode()
    settings.ANYMAIL = {key: v for key, v in settings.ANYMAIL.items() if key != "WEBHOOK_SECRET"}
    page = client.get(url).content.decode()
    card = page[page.index('id="card-open"') : page.index('id="card-unsubscribed"')]
    assert card.count("not tracked") == 3 and "0.0 %" not in card and "53.3 %" not in card
    health = client.get(reverse("newsletter_reports:health")).content.decode()
    assert "not tracked" in health


def test_an_esp_with_open_tracking_off_shows_opens_not_tracked_but_clicks_counted(editor, client):
    issue = IssueFactory(number=9, status="sent", sent_at=SENT)
    clicked = DeliveryFactory(issue=issue, clicked_at=SENT)
    DeliveryFactory(issue=issue)
    assert clicked.opened_at is None
    page = client.get(reverse("newsletter_reports:issue", args=[issue.pk])).content.decode()
    open_card = page[page.index('id="card-open"') : page.index('id="card-click"')]
    click_card = page[page.index('id="card-click"') : page.index('id="card-unsubscribed"')]
    assert "not tracked" in open_card
    assert "50.0 %" in click_card
