"""The issue in admin: curate, preview, test, schedule, send, hold, cancel, progress."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
import time_machine
from django.contrib.admin.models import LogEntry
from django.core import mail
from django.urls import reverse

from newsletter.models import Delivery, Issue
from tests.factories import (
    ArticleFactory,
    CategoryFactory,
    IssueFactory,
    IssueItemFactory,
    StaffUserFactory,
    SubscriberFactory,
)

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)  # Friday 09:00 in Shanghai


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def issue_no_12(finance, energy):
    """Draft No. 12: "Yuan settlement" (the lead) and "AIIB loan" in Finance, then
    "Solar in Uzbekistan" in Energy, at positions 1 to 3."""
    issue = IssueFactory(number=12, week="2026-W48")
    IssueItemFactory(
        issue=issue, position=1, article=ArticleFactory(title="Yuan settlement", category=finance)
    )
    IssueItemFactory(
        issue=issue, position=2, article=ArticleFactory(title="AIIB loan", category=finance)
    )
    IssueItemFactory(
        issue=issue,
        position=3,
        article=ArticleFactory(title="Solar in Uzbekistan", category=energy),
    )
    return issue


@pytest.fixture
def editor(client):
    user = StaffUserFactory(username="amina", groups=["Editors"])
    client.force_login(user)
    return user


@pytest.fixture
def publisher(client):
    user = StaffUserFactory(username="chen", groups=["Publishers"])
    client.force_login(user)
    return user


def url(name: str, issue: Issue) -> str:
    return reverse(f"admin:newsletter_issue_{name}", args=[issue.pk])


def text(response) -> str:
    """Return the page's visible text with whitespace squeezed, for assertions."""
    body = response.content.decode()
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", body)).split())


def history(issue: Issue) -> list[str]:
    return [
        entry.get_change_message()
        for entry in LogEntry.objects.filter(object_id=str(issue.pk)).order_by("action_time", "id")
    ]


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def inline_data(issue: Issue, **changes: dict) -> dict:
    """Return the change form's POST data for the issue, items changed by article title."""
    items = list(issue.items.select_related("article").order_by("id"))
    data = {
        "title": issue.title,
        "editor_note": issue.editor_note,
        "utm_source": issue.utm_source,
        "utm_medium": issue.utm_medium,
        "utm_campaign": issue.utm_campaign,
        "items-TOTAL_FORMS": str(len(items)),
        "items-INITIAL_FORMS": str(len(items)),
        "items-MIN_NUM_FORMS": "0",
        "items-MAX_NUM_FORMS": "1000",
        # Issue 14: the other languages' edition texts, none written here.
        "texts-TOTAL_FORMS": "0",
        "texts-INITIAL_FORMS": "0",
        "texts-MIN_NUM_FORMS": "0",
        "texts-MAX_NUM_FORMS": "1000",
    }
    for n, item in enumerate(items):
        row = {
            "id": item.pk,
            "issue": issue.pk,
            "position": item.position,
            "section": item.section_id or "",
            "article": item.article_id,
            "abstract_override": item.abstract_override,
            **({"pinned": "on"} if item.pinned else {}),
            **({"removed": "on"} if item.removed else {}),
        }
        row.update(changes.get(item.article.title, {}))
        for key, value in row.items():
            if value is not None:
                data[f"items-{n}-{key}"] = value
    return data


# --- curating -----------------------------------------------------------------------------


def test_an_editor_sees_the_curating_tools_but_not_the_sending_ones(client, editor, issue_no_12):
    page = client.get(url("change", issue_no_12))
    assert page.status_code == 200
    shown, html = text(page), page.content.decode()
    for tool in ("Preview", "Send a test", "Add new articles", "Waiting for approval"):
        assert tool in shown
    for name in ("preview", "send_test", "recompile"):
        assert url(name, issue_no_12) in html
    for name in ("schedule", "send", "cancel"):
        assert f'href="{url(name, issue_no_12)}"' not in html


def test_a_publisher_also_sees_schedule_send_and_cancel(client, publisher, issue_no_12):
    html = client.get(url("change", issue_no_12)).content.decode()
    for name in ("preview", "send_test", "schedule", "send", "cancel"):
        assert f'href="{url(name, issue_no_12)}"' in html


def test_the_issue_page_lists_items_in_the_digest_order(
    client, editor, issue_no_12, finance, energy
):
    IssueItemFactory(
        issue=issue_no_12,
        position=9,
        pinned=True,
        article=ArticleFactory(title="Pinned bank story", category=finance),
    )
    shown = text(client.get(url("change", issue_no_12)))
    order = [shown.index(t) for t in ("Pinned bank story", "Yuan settlement", "AIIB loan", "Solar")]
    assert order == sorted(order)


def test_editors_reorder_pin_remove_and_rewrite_abstracts(client, editor, issue_no_12):
    response = client.post(
        url("change", issue_no_12),
        inline_data(
            issue_no_12,
            **{
                "AIIB loan": {"position": 0, "abstract_override": "The editor's own abstract."},
                "Yuan settlement": {"removed": "on"},
            },
            editor_note="**Big week** for <script>alert(1)</script> finance.",
        )
        | {"editor_note": "**Big week** for <script>alert(1)</script> finance."},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    preview = client.get(url("preview", issue_no_12))
    body = preview.context["preview"].email
    assert "Yuan settlement" not in body.text
    assert "The editor's own abstract." in body.text
    assert "<strong>Big week</strong>" in body.html and "<script>" not in body.html
    assert body.text.index("AIIB loan") < body.text.index("Solar in Uzbekistan")
    assert any("Changed" in message for message in history(issue_no_12))


def test_a_sent_issue_is_read_only(client, publisher, issue_no_12):
    Issue.objects.filter(pk=issue_no_12.pk).update(status=Issue.Status.SENT)
    page = client.get(url("change", issue_no_12))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    response = client.post(
        url("change", issue_no_12), inline_data(issue_no_12) | {"title": "Changed"}
    )
    assert response.status_code == 403
    issue_no_12.refresh_from_db()
    assert issue_no_12.title != "Changed"


def test_add_new_articles_tops_up_the_draft(client, editor, issue_no_12, finance):
    issue_no_12.window_start, issue_no_12.window_end = NOW - timedelta(days=7), NOW
    issue_no_12.save()
    ArticleFactory(title="Late story", category=finance, published_at=NOW - timedelta(hours=1))
    response = client.post(url("recompile", issue_no_12), follow=True)
    assert "Updated No. 12 for 2026-W48: 1 new articles." in messages_of(response)
    assert issue_no_12.items.filter(article__title="Late story").exists()


def test_compile_this_weeks_issue_from_the_list(client, editor, finance):
    ArticleFactory(title="Fresh story", category=finance, published_at=NOW - timedelta(days=1))
    listing = client.get(reverse("admin:newsletter_issue_changelist"))
    assert "Compile this week" in text(listing)
    response = client.post(reverse("admin:newsletter_issue_compile"), {"week": "2026-W48"})
    issue = Issue.objects.get(week="2026-W48")
    assert response.status_code == 302 and response["Location"] == url("change", issue)
    assert issue.items.get().article.title == "Fresh story"
    assert history(issue) == ["Drafted No. 1 for 2026-W48: 1 new articles."]


def test_compile_refuses_a_bad_week(client, editor):
    response = client.post(reverse("admin:newsletter_issue_compile"), {"week": "week 48"})
    assert response.status_code == 200
    assert "is not an ISO week: write it as YYYY-Www" in text(response)
    assert not Issue.objects.exists()


# --- previews -----------------------------------------------------------------------------


def test_the_preview_shows_the_html_and_plain_text_a_reader_gets(client, editor, issue_no_12):
    page = client.get(url("preview", issue_no_12))
    shown = text(page)
    assert "Yuan settlement · Belt & Road Weekly No. 12" in shown  # the subject
    assert "Finance (2) · Energy (1)" in shown
    assert "== FINANCE ==" in shown and "Solar in Uzbekistan" in shown
    html = client.get(url("preview_html", issue_no_12))
    assert html.status_code == 200
    assert html["X-Frame-Options"] == "SAMEORIGIN"  # shown in the preview page's iframe
    assert "Yuan settlement" in html.content.decode()
    assert "%%UNSUBSCRIBE_URL%%" not in html.content.decode()
    assert "/newsletter/unsubscribe/" in html.content.decode()


def test_the_preview_per_variant_shows_only_the_chosen_sections(
    client, editor, issue_no_12, energy
):
    page = client.get(url("preview", issue_no_12), {"categories": [energy.pk]})
    email = page.context["preview"].email
    assert "Solar in Uzbekistan" in email.text and "AIIB loan" not in email.text
    assert page.context["html_url"].endswith(f"?categories={energy.pk}")
    html = client.get(page.context["html_url"]).content.decode()
    assert "Solar in Uzbekistan" in html and "AIIB loan" not in html


def test_a_variant_with_none_of_the_issues_sections_is_shown_as_skipped(
    client, editor, issue_no_12
):
    other = CategoryFactory(name="Culture", slug="culture")
    page = client.get(url("preview", issue_no_12), {"categories": [other.pk]})
    assert "Select a valid choice" in text(page)  # not a section of this issue
    assert client.get(url("preview_html", issue_no_12), {"categories": "abc"}).status_code == 400


# --- test sends ---------------------------------------------------------------------------


def test_send_test_goes_to_the_given_addresses_marked_test_with_no_delivery(
    client, editor, issue_no_12
):
    form = client.get(url("send_test", issue_no_12))
    assert form.context["form"]["to"].value() == "amina@newsroom.example.org"
    response = client.post(
        url("send_test", issue_no_12),
        {"to": "amina@newsroom.example.org, desk@example.org\nboss@example.org"},
    )
    assert response.status_code == 302
    assert sorted(m.to[0] for m in mail.outbox) == [
        "amina@newsroom.example.org",
        "boss@example.org",
        "desk@example.org",
    ]
    assert all(
        m.subject == "[TEST] Yuan settlement · Belt & Road Weekly No. 12" for m in mail.outbox
    )
    assert not Delivery.objects.exists()
    issue_no_12.refresh_from_db()
    assert issue_no_12.status == Issue.Status.DRAFT
    assert history(issue_no_12) == [
        "Sent a [TEST] copy of No. 12 to amina@newsroom.example.org, desk@example.org, boss@example.org."
    ]


def test_send_test_of_one_variant(client, editor, issue_no_12, energy):
    client.post(
        url("send_test", issue_no_12), {"to": "desk@example.org", "categories": [energy.pk]}
    )
    assert "Solar in Uzbekistan" in mail.outbox[0].body and "AIIB loan" not in mail.outbox[0].body


def test_send_test_refuses_a_bad_address_and_sends_nothing(client, editor, issue_no_12):
    response = client.post(
        url("send_test", issue_no_12), {"to": "desk@example.org, not-an-address"}
    )
    assert response.status_code == 200
    assert "not-an-address is not a valid email address." in text(response)
    assert mail.outbox == [] and history(issue_no_12) == []


def test_send_test_refuses_too_many_addresses(client, editor, issue_no_12):
    many = ",".join(f"r{n}@example.org" for n in range(21))
    response = client.post(url("send_test", issue_no_12), {"to": many})
    assert "A test goes to at most 20 addresses" in text(response)
    assert mail.outbox == []


# --- permissions --------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["schedule", "send", "cancel"])
def test_an_editor_without_the_send_permission_cannot_schedule_send_or_cancel(
    client, editor, issue_no_12, action
):
    SubscriberFactory()
    assert client.get(url(action, issue_no_12)).status_code == 403
    response = client.post(url(action, issue_no_12), {"at": "2026-11-28T09:00"})
    assert response.status_code == 403
    issue_no_12.refresh_from_db()
    assert (issue_no_12.status, issue_no_12.scheduled_at) == ("draft", None)
    assert mail.outbox == [] and not Delivery.objects.exists()


def test_a_user_outside_the_newsroom_cannot_open_the_issue_pages(client, issue_no_12):
    client.force_login(StaffUserFactory(username="intern"))
    for name in ("change", "preview", "preview_html", "send_test", "progress"):
        assert client.get(url(name, issue_no_12)).status_code == 403, name


def test_anonymous_visitors_are_sent_to_the_login_page(client, issue_no_12):
    response = client.get(url("preview", issue_no_12))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# --- schedule, send now, hold, cancel ------------------------------------------------------


def test_schedule_reads_the_time_in_the_newsletters_time_zone(client, publisher, issue_no_12):
    page = client.get(url("schedule", issue_no_12))
    assert "Asia/Shanghai" in text(page)
    response = client.post(url("schedule", issue_no_12), {"at": "2026-11-27T11:30"})
    assert response.status_code == 302
    issue_no_12.refresh_from_db()
    assert issue_no_12.status == Issue.Status.SCHEDULED
    assert issue_no_12.scheduled_at == datetime(2026, 11, 27, 3, 30, tzinfo=UTC)
    assert history(issue_no_12) == ["Scheduled No. 12 for 2026-11-27 11:30 (Asia/Shanghai)."]
    shown = text(client.get(url("change", issue_no_12)))
    assert "Goes out Friday 27 November 2026, 11:30 (Asia/Shanghai)" in shown


def test_scheduling_in_the_past_shows_one_error_and_changes_nothing(client, publisher, issue_no_12):
    response = client.post(url("schedule", issue_no_12), {"at": "2026-11-27T08:59"})
    assert response.status_code == 200
    assert "2026-11-27 08:59 (Asia/Shanghai) is in the past: choose a later time." in text(response)
    issue_no_12.refresh_from_db()
    assert (issue_no_12.status, issue_no_12.scheduled_at) == ("draft", None)
    assert history(issue_no_12) == []


def test_scheduling_garbage_is_refused(client, publisher, issue_no_12):
    response = client.post(url("schedule", issue_no_12), {"at": "next friday"})
    assert "Enter a valid date/time." in text(response)
    issue_no_12.refresh_from_db()
    assert issue_no_12.status == Issue.Status.DRAFT


def test_send_now_confirms_with_the_recipient_count_then_sends(
    client, publisher, issue_no_12, energy, run_on_commit
):
    SubscriberFactory.create_batch(3)
    finance_only = SubscriberFactory()
    finance_only.categories.set([issue_no_12.items.first().section])
    culture_only = SubscriberFactory()
    culture_only.categories.set([CategoryFactory(name="Culture", slug="culture")])
    page = client.get(url("send", issue_no_12))
    shown = text(page)
    assert "This sends No. 12 to 4 readers now." in shown
    assert "1 more active reader is skipped" in shown
    assert 'value="Yes, send to 4 readers now"' in page.content.decode()
    assert mail.outbox == [] and not Delivery.objects.exists()  # the page alone sends nothing
    with run_on_commit():
        response = client.post(url("send", issue_no_12))
    assert response["Location"] == url("progress", issue_no_12)
    assert len(mail.outbox) == 4
    issue_no_12.refresh_from_db()
    assert issue_no_12.status == Issue.Status.SENT
    # The success message counts readers as the confirmation did (it used to say 5),
    # and so does the progress page once the batch has run.
    assert history(issue_no_12) == [
        "Started sending No. 12 to 4 readers. 1 more active reader is skipped: "
        "none of their sections is in this issue."
    ]
    progress = client.get(url("progress_json", issue_no_12)).json()
    assert (progress["sent"], progress["skipped"], progress["failed"]) == (4, 1, 0)


def test_pressing_send_twice_sends_once(client, publisher, issue_no_12, run_on_commit):
    SubscriberFactory.create_batch(2)
    with run_on_commit():
        client.post(url("send", issue_no_12))
    response = client.post(url("send", issue_no_12), follow=True)
    assert "No. 12 is sent; it cannot be sent again." in messages_of(response)
    assert len(mail.outbox) == 2 and Delivery.objects.count() == 2


def test_sending_an_empty_issue_says_so_and_sends_nothing(client, publisher, issue_no_12):
    SubscriberFactory()
    issue_no_12.items.update(removed=True)
    response = client.post(url("send", issue_no_12), follow=True)
    assert "No. 12 has no articles; add some before it is sent." in messages_of(response)
    assert mail.outbox == [] and not Delivery.objects.exists()


def test_sending_a_cancelled_issue_says_so(client, publisher, issue_no_12):
    SubscriberFactory()
    Issue.objects.filter(pk=issue_no_12.pk).update(status=Issue.Status.CANCELLED)
    page = client.get(url("send", issue_no_12), follow=True)
    assert "No. 12 is cancelled: it cannot be sent." in messages_of(page)
    response = client.post(url("send", issue_no_12), follow=True)
    assert "No. 12 was cancelled; it cannot be sent." in messages_of(response)
    assert mail.outbox == []


def test_any_editor_can_hold_a_scheduled_issue(client, editor, issue_no_12):
    Issue.objects.filter(pk=issue_no_12.pk).update(
        status=Issue.Status.SCHEDULED, scheduled_at=NOW + timedelta(hours=2)
    )
    assert "Hold" in text(client.get(url("change", issue_no_12)))
    assert client.get(url("hold", issue_no_12)).status_code == 302  # a GET changes nothing
    issue_no_12.refresh_from_db()
    assert issue_no_12.status == Issue.Status.SCHEDULED
    response = client.post(url("hold", issue_no_12), follow=True)
    issue_no_12.refresh_from_db()
    assert (issue_no_12.status, issue_no_12.scheduled_at) == ("draft", None)
    assert history(issue_no_12) == [
        "Held No. 12: back to draft, it is not sent until scheduled again."
    ]
    assert history(issue_no_12)[0] in messages_of(response)


def test_cancel_asks_first_then_cancels(client, publisher, issue_no_12):
    page = client.get(url("cancel", issue_no_12))
    assert "It will not be sent to anyone." in text(page)
    issue_no_12.refresh_from_db()
    assert issue_no_12.status == Issue.Status.DRAFT
    client.post(url("cancel", issue_no_12))
    issue_no_12.refresh_from_db()
    assert issue_no_12.status == Issue.Status.CANCELLED
    assert history(issue_no_12) == ["Cancelled No. 12: it will not be sent."]
    again = client.post(url("cancel", issue_no_12), follow=True)
    assert "No. 12 was cancelled; it cannot be cancelled." in messages_of(again)


# --- progress -----------------------------------------------------------------------------


@pytest.fixture
def sending(issue_no_12):
    """An issue two minutes into its send: 60 served of 100, the last sent 5 s ago."""
    readers = SubscriberFactory.create_batch(100)
    statuses = ["sent"] * 50 + ["failed"] * 4 + ["skipped"] * 6 + ["sending"] * 10 + ["queued"] * 30
    # The 50 sent went out one every 2.3 s from the start, the last 5 s ago.
    sent_at = [NOW - timedelta(seconds=5 + 2.3 * n) for n in range(50)]
    Delivery.objects.bulk_create(
        Delivery(
            issue=issue_no_12,
            subscriber=reader,
            status=status,
            sent_at=sent_at[n] if status == "sent" else None,
        )
        for n, (reader, status) in enumerate(zip(readers, statuses, strict=True))
    )
    Issue.objects.filter(pk=issue_no_12.pk).update(
        status=Issue.Status.SENDING, send_started_at=NOW - timedelta(minutes=2)
    )
    issue_no_12.refresh_from_db()
    return issue_no_12


def test_the_progress_page_shows_counts_rate_and_time_left(client, editor, sending):
    page = client.get(url("progress", sending))
    shown = text(page)
    assert "Sending · 60 of 100 readers served ( 60 %)" in shown
    assert "Queued Sending now Sent Failed Skipped Rate Time left Elapsed" in shown
    assert "30 10 50 4 6 30 / min 1 min 2 min" in shown
    assert 'aria-valuenow="60"' in page.content.decode()
    assert 'data-status="sending"' in page.content.decode()  # the script polls while sending
    data = client.get(url("progress_json", sending)).json()
    assert data | {"status": "sending", "queued": 30, "in_flight": 10, "sent": 50} == data
    # 40 readers left at 50 sends in the 115 s up to the last send, less the 5 s since.
    assert (data["failed"], data["skipped"], data["percent"], data["eta_seconds"]) == (4, 6, 60, 87)


def test_time_left_counts_down_while_nothing_is_sent_and_then_says_stalled(client, editor, sending):
    seen = []
    for seconds in (0, 20, 40):
        with time_machine.travel(NOW + timedelta(seconds=seconds), tick=False):
            seen.append(client.get(url("progress_json", sending)).json())
    etas = [data["eta_seconds"] for data in seen]
    assert etas == [87, 67, 47]  # no climbing while the workers pause
    with time_machine.travel(NOW + timedelta(seconds=70), tick=False):
        stalled = client.get(url("progress_json", sending)).json()
    assert stalled["stalled"] and stalled["eta_seconds"] is None
    assert stalled["eta_display"] == "stalled: nothing sent for a minute"
    # Sending again: a time left again, from the moving average.
    row = Delivery.objects.filter(issue=sending, status="queued").first()
    Delivery.objects.filter(pk=row.pk).update(status="sent", sent_at=NOW + timedelta(seconds=69))
    with time_machine.travel(NOW + timedelta(seconds=70), tick=False):
        resumed = client.get(url("progress_json", sending)).json()
    assert not resumed["stalled"] and resumed["eta_seconds"] > 0


def test_the_issue_page_shows_the_progress_while_sending(client, editor, sending):
    shown = text(client.get(url("change", sending)))
    assert "60 of 100 readers served" in shown and "Send a test" not in shown


def test_a_sent_issue_shows_its_final_counts_and_a_place_for_the_results_report(
    client, editor, sending
):
    Delivery.objects.filter(status__in=["queued", "sending"]).update(status="sent")
    Issue.objects.filter(pk=sending.pk).update(status=Issue.Status.SENT, sent_at=NOW)
    page = client.get(url("change", sending))
    shown = text(page)
    assert "Sent · 100 of 100 readers served ( 100 %)" in shown
    assert 'id="issue-results"' in page.content.decode()
    assert "In the web archive" in shown
    results = reverse("newsletter_reports:issue", args=[sending.pk])
    assert f'href="{results}"' in page.content.decode()
    # The editor who follows the link sees the report (editors may view deliveries).
    report = client.get(results)
    assert report.status_code == 200
