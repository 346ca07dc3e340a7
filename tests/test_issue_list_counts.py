"""The issue list counts readers the way the send confirmation and progress do (issue 15, item 10)."""

from __future__ import annotations

import pytest

from newsletter.services.issues import issue_start_sending
from tests.factories import (
    ArticleFactory,
    CategoryFactory,
    IssueFactory,
    IssueItemFactory,
    SubscriberFactory,
)
from tests.reader_steps import admin_client  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def test_the_issue_lists_recipients_leave_out_readers_skipped_at_send_time(
    admin_client, run_on_commit
):
    energy, culture = CategoryFactory(name="Energy"), CategoryFactory(name="Culture")
    issue = IssueFactory(number=7)
    IssueItemFactory(
        issue=issue, article=ArticleFactory(title="Solar in Uzbekistan", category=energy)
    )
    SubscriberFactory.create_batch(2)
    nothing = SubscriberFactory()
    nothing.categories.set([culture])  # none of their sections is in No. 7: skipped
    with run_on_commit():
        issue_start_sending(issue=issue)
    issue.refresh_from_db()
    assert (issue.recipients_count, issue.sent_count, issue.skipped_count) == (3, 2, 1)
    page = admin_client.get("/admin/newsletter/issue/").content.decode()
    assert '<td class="field-recipients">2</td>' in page  # was 3: the snapshot, skips and all
    assert '<td class="field-skipped_count">1</td>' in page
