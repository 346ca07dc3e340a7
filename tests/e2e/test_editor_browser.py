"""The editor's path in a real browser (Debian's Chromium through Playwright).

Log in, open the week's draft, reorder it, preview it, send a test, schedule it; then
look at the sending progress and the web archive. Screenshots are saved under
test-output/<test name>/ for a person to look at.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.db import connections
from django.utils import timezone

from newsletter.models import Delivery, Issue, IssueItem
from newsletter.services.issues import issue_compile
from newsletter.weeks import current_week, issue_window
from tests.factories import (
    ArticleFactory,
    CategoryFactory,
    IssueFactory,
    IssueItemFactory,
    KeywordFactory,
    StaffUserFactory,
    SubscriberFactory,
    default_newsletter,
)

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery staple"
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium"),
]


@pytest.fixture
def live_server(transactional_db) -> Iterator:
    """Serve the site on 127.0.0.1 at a free port, for this test only.

    pytest-django's own live server binds "localhost" and lives for the whole session.
    """
    from pytest_django.live_server_helper import LiveServer

    server = LiveServer("127.0.0.1:0")
    yield server
    server.stop()


@pytest.fixture
def browser_page(request) -> Iterator:
    """Return a Playwright page in headless Chromium, and a function that saves screenshots."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls
    # are still plain synchronous code, so tell Django not to refuse them.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    folder = OUTPUT / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.set_default_timeout(15_000)
        shots = iter(range(1, 100))

        def shot(name: str, *, full_page: bool = True) -> Path:
            path = folder / f"{next(shots):02d}-{name}.png"
            page.screenshot(path=str(path), full_page=full_page)
            return path

        try:
            yield page, shot
        finally:
            browser.close()
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def closes_connections(test: Callable) -> Callable:
    """Close the test's database connections when it ends, in its own context.

    Under Playwright's sync API the test body runs in another context than its
    fixtures, so Django gives it a connection of its own that pytest-django never
    sees; left open, PostgreSQL refuses to drop the test database at the end.
    """

    @functools.wraps(test)
    def run(*args, **kwargs):
        try:
            return test(*args, **kwargs)
        finally:
            connections.close_all()

    return run


def week_of_news() -> Issue:
    """Return this week's draft, compiled from a realistic week of articles."""
    newsletter = default_newsletter()
    now = timezone.now()
    week = current_week(newsletter, now)
    # Whatever the day today, publish inside the window of this week's issue.
    anchor = min(issue_window(newsletter, week)[1], now)
    finance = CategoryFactory(name="Finance", slug="finance", position=1)
    infrastructure = CategoryFactory(name="Infrastructure", slug="infrastructure", position=2)
    rail = KeywordFactory(name="railway")
    ArticleFactory(
        title="Background: how the China-Laos Railway was built",
        published_at=anchor - timedelta(days=60),
        category=infrastructure,
    ).keywords.set([rail])
    stories = [
        ("Cross-border yuan settlement grows along the Belt and Road", finance, 3),
        ("AIIB approves new green energy loans", finance, 2),
        ("China-Laos Railway carries record freight", infrastructure, 0.5),
        ("Piraeus port expands its container terminal", infrastructure, 2),
    ]
    for title, category, days in stories:
        article = ArticleFactory(
            title=title,
            category=category,
            published_at=anchor - timedelta(days=days),
            abstract=f"{title}: what happened this week and why it matters for partner countries.",
        )
        if "Railway" in title:
            article.keywords.set([rail])
    issue = issue_compile(newsletter=newsletter, week=week, now=now).issue
    assert issue is not None and issue.items.count() == 4
    SubscriberFactory.create_batch(3)
    return issue


def log_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/admin/login/?next=/admin/newsletter/issue/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/newsletter/issue/")


def finance_titles(issue: Issue) -> list[str]:
    return [
        item.article.title
        for item in IssueItem.objects.filter(issue=issue, section__slug="finance")
        .select_related("article")
        .order_by("-pinned", "position", "id")
    ]


@closes_connections
def test_an_editor_curates_previews_tests_and_schedules_the_draft(live_server, browser_page):
    page, shot = browser_page
    issue = week_of_news()
    StaffUserFactory(username="chen", email="chen@newsroom.example.org", groups=["Publishers"])
    before = finance_titles(issue)
    assert before[0] == "AIIB approves new green energy loans"  # newer first, as compiled

    log_in(page, live_server, "chen")
    shot("issues-list")
    page.click(f"text=No. {issue.number}")  # the list links number and title
    page.wait_for_selector(".issue-panel")
    assert "Waiting for approval" in page.inner_text(".issue-panel")
    shot("draft")

    # Reorder: move the first Finance story down one place, then save.
    first_row = page.locator(".issue-items tbody tr.has_original").first
    first_row.locator("button.issue-move-down").click()
    shot("reordered-before-save", full_page=False)
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    assert finance_titles(issue) == list(reversed(before))

    # Preview: HTML and plain text, then one reader variant.
    page.click("text=Preview")
    page.wait_for_selector("iframe.preview-frame")
    frame = page.frame_locator("iframe.preview-frame")
    frame.locator("a.item-title", has_text="Cross-border yuan settlement").wait_for()
    text = page.inner_text("pre.preview-text")
    assert text.index("Cross-border yuan settlement") < text.index("AIIB approves")
    assert "Related reading:" in text and "how the China-Laos Railway was built" in text
    shot("preview")
    page.check("label:has-text('Infrastructure') input")
    page.click("input[value='Show this variant']")
    page.wait_for_url("**categories=*")
    assert "AIIB approves" not in page.inner_text("pre.preview-text")
    assert "Piraeus" in page.inner_text("pre.preview-text")
    shot("preview-variant")

    # Send a test to yourself and a colleague.
    page.click("text=Send a test")
    page.fill("#id_to", "chen@newsroom.example.org, desk@newsroom.example.org")
    shot("send-test-form")
    page.click("input[value='Send test']")
    page.wait_for_selector(".messagelist .success")
    assert sorted(m.to[0] for m in mail.outbox) == [
        "chen@newsroom.example.org",
        "desk@newsroom.example.org",
    ]
    assert all(m.subject.startswith("[TEST] ") for m in mail.outbox)
    assert not Delivery.objects.exists()

    # Schedule it for tomorrow morning, in the newsletter's time zone.
    tomorrow = (
        timezone.localtime(timezone.now(), issue.newsletter.tz) + timedelta(days=1)
    ).replace(hour=9, minute=0, second=0, microsecond=0)
    page.click("ul.object-tools >> text=Schedule")
    page.wait_for_selector("#id_at")
    page.fill("#id_at", tomorrow.strftime("%Y-%m-%dT%H:%M"))
    shot("schedule-form")
    page.click("input[value='Schedule']")
    page.wait_for_selector(".messagelist .success")
    assert "Goes out" in page.inner_text(".issue-panel")
    shot("scheduled")
    issue.refresh_from_db()
    assert issue.status == Issue.Status.SCHEDULED and issue.scheduled_at == tomorrow
    assert len(mail.outbox) == 2  # the tests only: no reader got anything


@closes_connections
def test_the_progress_page_and_the_web_archive_look_right(live_server, browser_page):
    page, shot = browser_page
    StaffUserFactory(username="amina", groups=["Editors"])
    now = timezone.now()
    sent = IssueFactory(
        number=41,
        status=Issue.Status.SENT,
        sent_at=now - timedelta(days=7),
        editor_note="A **busy week** for rail and ports.",
        utm_source="newsletter",
        utm_medium="email",
        utm_campaign="brw-41",
    )
    finance = CategoryFactory(name="Finance", slug="finance", position=1)
    for n, title in enumerate(["Yuan settlement grows", "New AIIB loans", "Bond sale in Astana"]):
        IssueItemFactory(
            issue=sent,
            position=n,
            article=ArticleFactory(title=title, category=finance, abstract=f"{title}, in brief."),
        )
    sending = IssueFactory(
        number=42, status=Issue.Status.SENDING, send_started_at=now - timedelta(minutes=3)
    )
    IssueItemFactory(issue=sending)
    readers = SubscriberFactory.create_batch(40)
    statuses = ["sent"] * 22 + ["failed"] + ["skipped"] * 2 + ["sending"] * 5 + ["queued"] * 10
    Delivery.objects.bulk_create(
        Delivery(issue=sending, subscriber=r, status=s)
        for r, s in zip(readers, statuses, strict=True)
    )

    log_in(page, live_server, "amina")
    page.goto(f"{live_server.url}/admin/newsletter/issue/{sending.pk}/progress/")
    page.wait_for_selector(".issue-progress")
    assert "25 of 40 readers served" in page.inner_text(".issue-progress")
    shot("progress")
    # The page follows the send by itself: finish it and watch the page change.
    Delivery.objects.filter(issue=sending, status__in=["queued", "sending"]).update(status="sent")
    Issue.objects.filter(pk=sending.pk).update(status=Issue.Status.SENT, sent_at=timezone.now())
    page.wait_for_selector("text=Every reader has been served.", timeout=20_000)
    assert "40 of 40 readers served" in page.inner_text(".issue-progress")
    shot("progress-finished")

    page.goto(f"{live_server.url}/newsletter/archive/")
    assert "No. 42" in page.inner_text("main") and "No. 41" in page.inner_text("main")
    shot("archive")
    page.click("text=No. 41")
    page.wait_for_selector("h1")
    assert page.inner_text("h1") == "Belt & Road Weekly No. 41"
    assert "busy week" in page.inner_text(".note")
    shot("archive-issue")
