"""The digest as receiving systems judge it: SpamAssassin's score and the phone-width layout."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core import mail

from newsletter.services.issues import issue_start_sending
from tests.conftest import IN_CI
from tests.factories import (
    ArticleFactory,
    CategoryFactory,
    IssueFactory,
    IssueItemFactory,
    SubscriberFactory,
)

pytestmark = pytest.mark.django_db
OUTPUT = Path(__file__).resolve().parent.parent / "test-output"


@pytest.fixture
def digest_email(settings, run_on_commit):
    """Send a realistic issue to one reader and return the message as it leaves."""
    settings.SITE_URL = "https://weekly.example.org"
    finance, energy = CategoryFactory(name="Finance"), CategoryFactory(name="Energy")
    issue = IssueFactory(
        number=12,
        editor_note="This week: **banks go digital** and new solar power in Central Asia.",
    )
    for n, (title, category) in enumerate(
        [
            ("ICBC and Alipay extend deposit cooperation to three-year product", finance),
            ("Central bank injects liquidity through reverse repos", finance),
            ("Chinese-built solar plant in Uzbekistan connects to the grid", energy),
            ("Wind farm in South Africa begins commercial operation", energy),
        ]
    ):
        article = ArticleFactory(
            title=title,
            category=category,
            url=f"https://portal.example.com/beltandroad/2026/story-{n}.html",
            abstract="A short abstract of the story, as the portal writes it, in one or two plain sentences.",
        )
        IssueItemFactory(issue=issue, article=article)
    SubscriberFactory(email="li.wei@example.com")
    with run_on_commit():
        issue_start_sending(issue=issue)
    assert len(mail.outbox) == 1
    return mail.outbox[0]


def spamassassin_score(raw: bytes) -> tuple[float, str]:
    result = subprocess.run(
        ["spamassassin", "-L", "-t"], input=raw, capture_output=True, timeout=120
    )
    report = result.stdout.decode(errors="replace")
    match = re.search(r"Content analysis details:\s+\((-?[\d.]+) points", report)
    assert match, report[-2000:]
    return float(match.group(1)), report


def test_spamassassin_local_rules_score_the_digest_near_zero(digest_email):
    if shutil.which("spamassassin") is None:
        if IN_CI:
            pytest.fail("spamassassin is not installed (.ci/run installs Debian's package)")
        pytest.skip("spamassassin is not installed: apt-get install spamassassin")
    score, report = spamassassin_score(digest_email.message().as_bytes())
    assert score <= 0.5, report[report.find("Content analysis details") :]


@pytest.mark.browser
def test_the_digest_reads_well_at_phone_width(digest_email, request):
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        if IN_CI:
            pytest.fail("Debian's chromium is not installed (.ci/run installs it)")
        pytest.skip("needs Debian's chromium")
    html = digest_email.alternatives[0][0]
    folder = OUTPUT / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            for width in (375, 600, 1024):
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.set_content(html, wait_until="domcontentloaded")
                page.screenshot(path=str(folder / f"digest-{width}.png"), full_page=True)
                overflow = page.evaluate("document.documentElement.scrollWidth")
                assert overflow <= width, f"{overflow}px wide at a {width}px screen"
                title_size = page.evaluate(
                    "parseFloat(getComputedStyle(document.querySelector('.item-title')).fontSize)"
                )
                assert title_size >= 16
                page.close()
        finally:
            browser.close()
