"""A Publisher sends an issue's failed deliveries again, in a real browser.

Screenshots go to test-output/<test name>/ for a person to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core import mail
from django.utils import timezone

from newsletter.models import Delivery, InterruptedCall, Issue
from newsletter.services.issues import issue_start_sending
from tests.e2e.test_editor_browser import (  # noqa: F401 - fixtures
    CHROMIUM,
    browser_page,
    closes_connections,
    live_server,
    log_in,
    week_of_news,
)
from tests.factories import StaffUserFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium"),
]


@closes_connections
def test_a_publisher_retries_the_failed_deliveries_and_each_is_sent_once(live_server, browser_page):
    page, shot = browser_page
    issue = week_of_news()
    StaffUserFactory(username="chen", groups=["Publishers"])
    issue_start_sending(issue=issue)  # in process: the three readers are sent
    # Two of them failed: the ESP account was suspended at the time.
    failed = list(Delivery.objects.filter(issue=issue).order_by("id")[:2])
    Delivery.objects.filter(pk__in=[d.pk for d in failed]).update(
        status="failed", last_error="gave up after 5 attempts: Mailgun API response 401"
    )
    Issue.objects.filter(pk=issue.pk).update(sent_count=1, failed_count=2)
    InterruptedCall.objects.create(issue=issue, at=timezone.now(), recipients=1)
    before = len(mail.outbox)

    log_in(page, live_server, "chen")
    page.goto(f"{live_server.url}/admin/newsletter/issue/{issue.pk}/change/")
    shot("issue-with-failures")
    page.click("#retry-failed")
    page.wait_for_selector("#failure-reasons")
    assert "Mailgun API response 401" in page.inner_text("#failure-reasons")
    shot("retry-confirm")
    page.click("input[type=submit]")
    page.wait_for_selector(".issue-progress")
    assert "3 of 3 readers served" in page.inner_text(".issue-progress")
    shot("progress-after-retry")

    issue.refresh_from_db()
    assert (issue.status, issue.sent_count, issue.failed_count) == ("sent", 3, 0)
    again = sorted(m.to[0] for m in mail.outbox[before:])
    assert again == sorted(d.subscriber.email for d in failed)  # only they, once each

    page.goto(f"{live_server.url}/admin/newsletter/reports/issue/{issue.pk}/")
    assert "possible duplicates: 1 (calls interrupted in flight)" in page.inner_text(
        "#possible-duplicates"
    )
    shot("report")
