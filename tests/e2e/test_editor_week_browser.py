"""The editorial week in a real browser, with the server in UTC and the newsroom in
Asia/Shanghai: write the headline, read the size meter, schedule, reschedule unchanged.
Screenshots are saved under test-output/<test name>/."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from newsletter.models import Issue
from newsletter.selectors.issues import issue_digest_size
from tests.e2e.test_editor_browser import (  # noqa: F401 - fixtures
    browser_page,
    closes_connections,
    live_server,
    log_in,
    pytestmark,
    week_of_news,
)
from tests.factories import StaffUserFactory


@closes_connections
def test_headline_size_meter_and_scheduling_in_shanghai_with_the_server_in_utc(
    live_server, browser_page, settings
):
    settings.TIME_ZONE = "UTC"
    page, shot = browser_page
    issue = week_of_news()
    assert issue.newsletter.timezone == "Asia/Shanghai"
    StaffUserFactory(username="chen", email="chen@newsroom.example.org", groups=["Publishers"])
    log_in(page, live_server, "chen")
    page.goto(f"{live_server.url}/admin/newsletter/issue/{issue.pk}/change/")

    # The size meter: the largest variant against the 100 KB limit.
    meter = page.inner_text("#issue-size")
    size = issue_digest_size(issue=issue)  # the largest of every language's editions
    assert f"Largest email: {size.kb} KB of HTML (the variant with {size.variant})" in meter
    assert "every section" in size.variant and "Finance, Infrastructure" in size.variant
    assert "too large" not in meter
    # The headline: empty shows the default in grey; the editor writes their own.
    default = page.get_attribute("#id_headline", "placeholder")
    assert default == (
        f"AIIB approves new green energy loans · Belt & Road Weekly No. {issue.number}"
    )
    page.fill("#id_headline", "Yuan settlement and a record for the China-Laos Railway")
    page.fill("#id_preheader", "Plus: Piraeus grows and the AIIB lends green")
    shot("headline-and-size-meter")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    issue.refresh_from_db()
    assert issue.headline == "Yuan settlement and a record for the China-Laos Railway"
    assert issue.preheader == "Plus: Piraeus grows and the AIIB lends green"

    page.click("text=Preview")
    page.wait_for_selector("iframe.preview-frame")
    assert "Yuan settlement and a record for the China-Laos Railway" in page.inner_text("#content")
    assert page.inner_text(".preview-preheader") == "Plus: Piraeus grows and the AIIB lends green"
    shot("preview-with-headline")
    page.goto(f"{live_server.url}/admin/newsletter/issue/{issue.pk}/change/")

    # Schedule for tomorrow 18:00 Shanghai time, typed as the editor sees it.
    tomorrow = (
        timezone.localtime(timezone.now(), issue.newsletter.tz) + timedelta(days=1)
    ).replace(hour=18, minute=0, second=0, microsecond=0)
    page.click("ul.object-tools >> text=Schedule")
    page.wait_for_selector("#id_at")
    page.fill("#id_at", tomorrow.strftime("%Y-%m-%dT%H:%M"))
    shot("schedule-form")
    page.click("input[value='Schedule']")
    page.wait_for_selector(".messagelist .success")
    panel = page.inner_text(".issue-panel")
    assert f"{tomorrow:%A} {tomorrow.day} {tomorrow:%B %Y}, 18:00" in panel
    assert "(Asia/Shanghai)" in panel
    shot("scheduled")

    # Reschedule shows the same 18:00; saving it unchanged changes nothing.
    page.click("ul.object-tools >> text=Reschedule")
    page.wait_for_selector("#id_at")
    assert page.input_value("#id_at") == tomorrow.strftime("%Y-%m-%dT%H:%M")
    shot("reschedule-form")
    page.click("input[value='Schedule']")
    page.wait_for_selector(".messagelist .success")
    issue.refresh_from_db()
    assert issue.status == Issue.Status.SCHEDULED and issue.scheduled_at == tomorrow
    assert issue.scheduled_at.astimezone(timezone.get_fixed_timezone(0)).hour == 10
