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
def digest_email(site, run_on_commit):
    """Send a realistic issue to one reader and return the message as it leaves."""
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


@pytest.fixture
def chinese_digest_email(site, run_on_commit):
    """The same kind of week in the Chinese edition (issue 14), as it leaves for a reader."""
    from articles.models import CategoryName
    from newsletter.models import IssueText
    from tests.language_steps import chinese_version

    finance, energy = CategoryFactory(name="Finance"), CategoryFactory(name="Energy")
    CategoryName.objects.create(category=finance, language="zh-hans", name="金融")
    CategoryName.objects.create(category=energy, language="zh-hans", name="能源")
    issue = IssueFactory(number=12, editor_note="This week: **banks go digital**.")
    IssueText.objects.create(
        issue=issue,
        language="zh-hans",
        editor_note="本周看点：**银行数字化**，以及中亚新的太阳能电站。",
    )
    for n, (title, zh_title, category) in enumerate(
        [
            (
                "ICBC and Alipay extend deposit cooperation",
                "工商银行与支付宝深化存款合作，推出三年期产品",
                finance,
            ),
            ("Central bank injects liquidity", "央行开展逆回购操作，保持流动性合理充裕", finance),
            (
                "Solar plant in Uzbekistan connects to the grid",
                "中企承建的乌兹别克斯坦光伏电站并网发电",
                energy,
            ),
            ("Wind farm in South Africa begins operation", "南非风电场正式投入商业运营", energy),
        ]
    ):
        article = ArticleFactory(
            title=title,
            category=category,
            url=f"https://portal.example.com/beltandroad/2026/story-{n}.html",
        )
        IssueItemFactory(issue=issue, article=article)
        chinese_version(
            article,
            title=zh_title,
            source="新华丝路",
            abstract="据新华丝路报道，该项目进展顺利，为当地经济发展和民生改善作出了积极贡献，受到各方好评。",
        )
    SubscriberFactory(email="wang.fang@example.cn", language="zh-hans")
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


def test_spamassassin_local_rules_score_the_chinese_digest_near_zero(chinese_digest_email):
    if shutil.which("spamassassin") is None:
        if IN_CI:
            pytest.fail("spamassassin is not installed (.ci/run installs Debian's package)")
        pytest.skip("spamassassin is not installed: apt-get install spamassassin")
    raw = chinese_digest_email.message().as_bytes()
    assert "工商银行".encode() in raw or b"utf-8" in raw.lower()
    score, report = spamassassin_score(raw)
    assert score <= 0.5, report[report.find("Content analysis details") :]


@pytest.mark.browser
def test_the_digest_reads_well_at_phone_width(digest_email, request):
    _screens(digest_email, request, widths=(375, 600, 1024))


@pytest.mark.browser
def test_the_chinese_digest_reads_well_at_phone_and_desktop_width(chinese_digest_email, request):
    """Screenshots in test-output/<this test>/digest-375.png and digest-600.png (issue 14)."""
    fonts = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True)
    if not fonts.stdout.strip():
        if IN_CI:
            pytest.fail("no Chinese font (.ci/run installs Debian's fonts-wqy-zenhei)")
        pytest.skip("no Chinese font: apt-get install fonts-wqy-zenhei")
    _screens(chinese_digest_email, request, widths=(375, 600), chinese=True)


def _screens(email, request, *, widths: tuple[int, ...], chinese: bool = False) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        if IN_CI:
            pytest.fail("Debian's chromium is not installed (.ci/run installs it)")
        pytest.skip("needs Debian's chromium")
    html = email.alternatives[0][0]
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
            for width in widths:
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.set_content(html, wait_until="domcontentloaded")
                page.screenshot(path=str(folder / f"digest-{width}.png"), full_page=True)
                overflow = page.evaluate("document.documentElement.scrollWidth")
                assert overflow <= width, f"{overflow}px wide at a {width}px screen"
                title_size = page.evaluate(
                    "parseFloat(getComputedStyle(document.querySelector('.item-title')).fontSize)"
                )
                assert title_size >= 16
                if chinese:
                    # A CJK font is found (the stack lists them after the Latin faces),
                    # so Chinese titles are not drawn as empty boxes: a glyph of
                    # 光 is as wide as the font size, tofu boxes are narrower.
                    assert page.evaluate("document.documentElement.lang") == "zh-hans"
                    width_of = page.evaluate(
                        """() => { const s = document.createElement('span');
                        s.style.fontSize = '20px'; s.textContent = '光光光光光';
                        document.querySelector('.item-title').appendChild(s);
                        const w = s.getBoundingClientRect().width; s.remove(); return w; }"""
                    )
                    assert width_of >= 90, f"Chinese glyphs are {width_of}px for five"
                page.close()
        finally:
            browser.close()
