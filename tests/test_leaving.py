"""Leaving and coming back: one-step resubscribe, and "why are you leaving?" in list health."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth.models import Permission, User
from django.core import mail
from django.test import Client
from django.utils.html import escape

from newsletter.models import ConsentRecord, ConsentText, LeavingReason, Subscriber
from newsletter.tokens import reader_tokens
from privacy.services import subscriber_erase
from tests.factories import SubscriberFactory

pytestmark = pytest.mark.django_db


def unsubscribe_url(reader: Subscriber) -> str:
    return f"/newsletter/unsubscribe/{reader_tokens.make_token(reader, 'unsubscribe')}/"


def csrf_of(page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def leave(client: Client, reader: Subscriber) -> str:
    """Press Unsubscribe on the page the email's link opens; return the page that follows."""
    response = client.post(unsubscribe_url(reader))
    assert response.status_code == 200
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED
    return response.content.decode()


def test_an_unsubscribed_reader_comes_back_with_one_button_and_no_form_to_fill():
    reader = SubscriberFactory()
    client = Client(enforce_csrf_checks=True)
    page = leave(client, reader)
    form = re.search(r'<form method="post" action="([^"]+)" class="resubscribe">', page)
    assert form and "Subscribe me again" in page
    consent = ConsentText.objects.get(newsletter=reader.newsletter)
    assert escape(consent.text) in page  # the wording agreed to is beside the button
    response = client.post(form.group(1), {"csrfmiddlewaretoken": csrf_of(page)})
    assert response.status_code == 200
    assert "Welcome back" in response.content.decode()
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.ACTIVE and reader.unsubscribed_at is None
    record = reader.consent_records.get(method="resubscribe")
    assert record.action == ConsentRecord.Action.CONFIRM and record.consent_text == consent
    assert mail.outbox == []  # no second opt-in: the signed link already proved the inbox


def test_coming_back_needs_the_pages_csrf_token_and_a_post():
    reader = SubscriberFactory()
    client = Client(enforce_csrf_checks=True)
    leave(client, reader)
    url = unsubscribe_url(reader) + "resubscribe/"
    assert client.post(url).status_code == 403
    assert client.get(url).status_code == 405
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED


@pytest.mark.parametrize("status", [Subscriber.Status.BOUNCED, Subscriber.Status.COMPLAINED])
def test_a_bounced_or_complained_reader_is_not_brought_back_this_way(client, status):
    reader = SubscriberFactory(status=status)
    page = client.post(unsubscribe_url(reader) + "resubscribe/").content.decode()
    reader.refresh_from_db()
    assert reader.status == status
    assert "Subscribe me again" not in page and "/newsletter/subscribe/" in page


def test_a_bad_token_changes_nothing(client):
    reader = SubscriberFactory(status=Subscriber.Status.UNSUBSCRIBED)
    response = client.post("/newsletter/unsubscribe/1-0000/resubscribe/")
    assert response.status_code == 404
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED


def test_the_leaving_reader_may_say_why_with_four_choices_and_words_of_their_own(client):
    reader = SubscriberFactory()
    page = leave(client, reader)
    assert len(re.findall(r'type="radio" name="reason"', page)) == 4
    assert '<textarea name="comment"' in page
    url = unsubscribe_url(reader) + "reason/"
    response = client.post(url, {"reason": "too-many", "comment": "Weekly is a lot <b>for me</b>"})
    assert "Thank you: the editors read every answer." in response.content.decode()
    # A second answer replaces the first: one leaving, one answer.
    client.post(url, {"reason": "elsewhere"})
    answer = LeavingReason.objects.get()
    assert (answer.reason, answer.comment, answer.subscriber) == ("elsewhere", "", reader)


def test_an_empty_answer_is_refused_with_a_focused_summary(client):
    reader = SubscriberFactory()
    leave(client, reader)
    page = client.post(unsubscribe_url(reader) + "reason/", {"reason": "nonsense"}).content.decode()
    assert 'class="error-summary"' in page and "autofocus" in page
    assert not LeavingReason.objects.exists()


def test_an_active_reader_cannot_post_a_reason(client):
    reader = SubscriberFactory()
    client.post(unsubscribe_url(reader) + "reason/", {"reason": "too-many"})
    assert not LeavingReason.objects.exists()


def test_list_health_reports_the_reasons_week_by_week(client, settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    user = User.objects.create_user("editor", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_issue"))
    client.force_login(user)
    leavers = SubscriberFactory.create_batch(4)
    # Monday 00:30 in Shanghai is still Sunday in UTC: it counts in Shanghai's new week.
    moments = [
        (datetime(2026, 11, 18, 3, 0, tzinfo=UTC), "too-many", ""),
        (datetime(2026, 11, 22, 16, 30, tzinfo=UTC), "too-many", ""),
        (datetime(2026, 11, 24, 9, 0, tzinfo=UTC), "not-relevant", "Only Energy matters to me"),
        (datetime(2026, 11, 25, 9, 0, tzinfo=UTC), "", "Moving jobs"),
    ]
    for reader, (moment, reason, words) in zip(leavers, moments, strict=True):
        with time_machine.travel(moment, tick=False):
            leave(client, reader)
            client.post(unsubscribe_url(reader) + "reason/", {"reason": reason, "comment": words})
    with time_machine.travel(datetime(2026, 11, 26, 9, 0, tzinfo=UTC), tick=False):
        page = client.get("/admin/newsletter/reports/health/").content.decode()
    table = page[page.index('id="leaving-reasons"') :]
    table = table[: table.index("</table>")]
    rows = {
        cells[0]: cells[1:]
        for cells in (re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in table.split("<tr>")[2:])
    }
    # Columns: too many, not relevant, elsewhere, never signed up, own words, answers.
    assert rows["2026-11-16"] == ["1", "0", "0", "0", "0", "1"]
    assert rows["2026-11-23"] == ["1", "1", "0", "0", "2", "3"]
    assert "Only Energy matters to me" in page and "Moving jobs" in page


def test_erasing_a_reader_deletes_their_words_and_keeps_only_the_count(client):
    reader = SubscriberFactory()
    leave(client, reader)
    client.post(unsubscribe_url(reader) + "reason/", {"reason": "never-asked", "comment": "Who?"})
    subscriber_erase(subscriber=reader, method="admin")
    answer = LeavingReason.objects.get()
    assert (answer.reason, answer.comment, answer.subscriber) == ("never-asked", "", None)
