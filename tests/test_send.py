"""send_issue mails every active reader exactly once, with the bulk-sender headers."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone

from newsletter.models import Delivery, Issue, Subscriber
from newsletter.services.issues import issue_send_test, issue_start_sending
from newsletter.services.withdrawals import subscriber_unsubscribe
from tests.conftest import SITE
from tests.factories import CategoryFactory, IssueFactory, SubscriberFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("site")]


def send(issue: Issue, run_on_commit) -> str:
    out = StringIO()
    with run_on_commit():
        call_command("send_issue", str(issue.number), stdout=out)
    return out.getvalue()


def test_every_active_reader_gets_exactly_one_email_and_no_one_else(issue, run_on_commit):
    active = SubscriberFactory.create_batch(3)
    SubscriberFactory(status=Subscriber.Status.PENDING, confirmed_at=None)
    SubscriberFactory(status=Subscriber.Status.UNSUBSCRIBED)
    SubscriberFactory(status=Subscriber.Status.BOUNCED)
    SubscriberFactory(status=Subscriber.Status.COMPLAINED)
    SubscriberFactory(paused_until=timezone.now() + timedelta(days=20))
    out = send(issue, run_on_commit)
    assert sorted(m.to[0] for m in mail.outbox) == sorted(s.email for s in active)
    assert Delivery.objects.filter(issue=issue).count() == 3
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    issue.refresh_from_db()
    assert (issue.status, issue.recipients_count, issue.sent_count) == ("sent", 3, 3)
    assert "No. 7: 3 readers queued." in out


@pytest.mark.django_db(transaction=True)
def test_wait_shows_progress_until_the_issue_is_sent(issue):
    SubscriberFactory.create_batch(2)
    out = StringIO()
    call_command("send_issue", "7", "--wait", stdout=out)
    assert "2/2 done · sent 2 · failed 0 · skipped 0" in out.getvalue()
    assert "No. 7 is sent." in out.getvalue()


def test_running_send_issue_again_sends_no_one_a_second_copy(issue, run_on_commit):
    SubscriberFactory.create_batch(2)
    send(issue, run_on_commit)
    with pytest.raises(CommandError, match="No. 7 is sent; it cannot be sent again"):
        send(issue, run_on_commit)
    assert len(mail.outbox) == 2
    assert Delivery.objects.count() == 2


def test_a_second_start_on_a_sending_issue_is_refused(issue, run_on_commit):
    SubscriberFactory()
    with run_on_commit():
        issue_start_sending(issue=issue)
        with pytest.raises(Exception, match="is sending; it cannot be sent again"):
            issue_start_sending(issue=Issue.objects.get(pk=issue.pk))
    assert len(mail.outbox) == 1


def test_the_digest_carries_bulk_sender_headers_and_a_per_reader_unsubscribe(
    issue, run_on_commit, client
):
    reader = SubscriberFactory(email="Reader.One@Example.com")
    send(issue, run_on_commit)
    message = mail.outbox[0]
    headers = message.extra_headers
    assert headers["List-Id"] == '"Belt & Road Weekly" <belt-and-road-weekly.weekly.example.org>'
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = re.fullmatch(
        r"<(https://weekly\.example\.org/newsletter/unsubscribe/[^>]+/)>",
        headers["List-Unsubscribe"],
    )
    assert unsubscribe, headers["List-Unsubscribe"]
    assert unsubscribe.group(1) in message.body  # the visible link is the same
    assert message.subject == "ICBC and Alipay · Belt & Road Weekly No. 7"  # the lead story
    # The header's link really unsubscribes, the way a mailbox provider uses it.
    response = client.post(
        urlsplit(unsubscribe.group(1)).path,
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED


def test_the_digest_has_a_text_part_and_an_inlined_html_part_with_absolute_links(
    issue, run_on_commit
):
    SubscriberFactory()
    send(issue, run_on_commit)
    message = mail.outbox[0]
    assert "ICBC and Alipay" in message.body and "Banks & apps <together>." in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert "Banks &amp; apps &lt;together&gt;." in html
    assert 'class="masthead" style="' in html  # CSS inlined
    hrefs = re.findall(r'href="([^"]+)"', html)
    # Every link is absolute, except the contents' jumps to a section of this message.
    fragments = [h for h in hrefs if h.startswith("#")]
    assert all(f'id="{h[1:]}"' in html for h in fragments), fragments
    outside = [h for h in hrefs if not h.startswith("#")]
    assert outside and all(h.startswith(("https://", "http://")) for h in outside), hrefs
    article = issue.items.get(article__title="ICBC and Alipay").article
    assert article.url in hrefs
    assert f"{SITE}/newsletter/archive/7/" in hrefs
    assert "%%" not in html and "%%" not in message.body  # every placeholder filled
    assert "1 Example Road, Beijing" in html  # postal address


def test_a_reader_gets_only_the_sections_they_chose_and_an_empty_digest_is_skipped(
    issue, energy, run_on_commit
):
    picky = SubscriberFactory()
    picky.categories.set([energy])
    nothing = SubscriberFactory()
    nothing.categories.set([CategoryFactory(name="Culture")])
    everything = SubscriberFactory()
    send(issue, run_on_commit)
    by_reader = {m.to[0]: m for m in mail.outbox}
    assert set(by_reader) == {picky.email, everything.email}
    assert "Solar in Uzbekistan" in by_reader[picky.email].body
    assert "ICBC and Alipay" not in by_reader[picky.email].body
    assert "ICBC and Alipay" in by_reader[everything.email].body
    skipped = Delivery.objects.get(subscriber=nothing)
    assert skipped.status == Delivery.Status.SKIPPED
    assert skipped.last_error == "none of the reader's sections is in this issue"
    issue.refresh_from_db()
    assert (issue.sent_count, issue.skipped_count, issue.status) == (2, 1, "sent")


def test_a_reader_who_unsubscribes_before_their_batch_runs_gets_nothing(
    issue, django_capture_on_commit_callbacks
):
    leaving, staying = SubscriberFactory(), SubscriberFactory()
    with django_capture_on_commit_callbacks() as fan_out:
        issue_start_sending(issue=issue)
    with django_capture_on_commit_callbacks() as batches:
        for task in fan_out:
            task()  # both readers are in the ledger; their batch has not run
    assert Delivery.objects.filter(issue=issue, status="queued").count() == 2
    subscriber_unsubscribe(subscriber=leaving, method="link")
    for task in batches:
        task()
    assert [m.to[0] for m in mail.outbox] == [staying.email]
    assert Delivery.objects.get(subscriber=leaving).status == Delivery.Status.SKIPPED


def test_an_issue_without_articles_is_not_sent(run_on_commit):
    empty = IssueFactory(number=9)
    SubscriberFactory()
    with pytest.raises(CommandError, match="No. 9 has no articles"):
        send(empty, run_on_commit)
    assert mail.outbox == []


def test_a_test_send_is_marked_and_writes_no_delivery(issue):
    SubscriberFactory()
    out = StringIO()
    call_command("send_issue", "7", "--test-to", "editor@example.org", stdout=out)
    assert [m.to for m in mail.outbox] == [["editor@example.org"]]
    assert mail.outbox[0].subject == "[TEST] ICBC and Alipay · Belt & Road Weekly No. 7"
    assert Delivery.objects.count() == 0
    assert Issue.objects.get(pk=issue.pk).status == Issue.Status.DRAFT
    with pytest.raises(CommandError, match="is not a valid email address"):
        call_command("send_issue", "7", "--test-to", "not-an-address")


def test_issue_send_test_reaches_every_address(issue):
    assert issue_send_test(issue=issue, to=["a@example.org", "b@example.org"]) == 2
    assert [m.to[0] for m in mail.outbox] == ["a@example.org", "b@example.org"]
