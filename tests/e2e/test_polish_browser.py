"""The rough edges a first-time reader and editor meet, looked at in Chromium at 1280 and 375 px.

The digest in light and dark mode (every text measured against its background), the
archive, an issue page, the preferences page with a failed erase, and the editor's issue
page. Screenshots go to test-output/<test name>/; look at them after changing a page.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from newsletter.models import Issue
from newsletter.selectors.issues import issue_preview
from newsletter.tokens import reader_tokens
from tests.e2e.test_editor_browser import (
    CHROMIUM,
    OUTPUT,
    PASSWORD,
    closes_connections,
    live_server,  # noqa: F401 - the fixture: a server of this test's own
    week_of_news,
)
from tests.factories import ArticleFactory, CategoryFactory, IssueItemFactory, StaffUserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1280, 375)

# For every visible piece of text: its colour, the first opaque background behind it
# and the WCAG contrast ratio between them.
CONTRASTS_JS = """() => {
  const rgba = c => { const p = c.match(/[\\d.]+/g).map(Number); return p.length === 4 ? p : [...p, 1]; };
  const channel = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const lum = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const behind = el => {
    for (; el; el = el.parentElement) { const c = rgba(getComputedStyle(el).backgroundColor); if (c[3] > 0) return c; }
    return rgba(getComputedStyle(document.documentElement).backgroundColor || 'rgb(255,255,255)');
  };
  const out = [];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) {
    const node = walk.currentNode, el = node.parentElement;
    if (!node.textContent.trim() || !el.checkVisibility() || el.closest('.preheader')) continue;
    const fg = lum(rgba(getComputedStyle(el).color)), bg = lum(behind(el));
    out.push([node.textContent.trim().slice(0, 50), getComputedStyle(el).color,
              (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05)]);
  }
  return out;
}"""


@pytest.fixture
def chromium(request):
    if not __import__("pathlib").Path(CHROMIUM).exists():
        pytest.skip("needs Debian's chromium")
    import os

    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    folder = OUTPUT / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )

        def open_page(width: int, *, dark: bool = False):
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.set_default_timeout(15_000)
            page.emulate_media(color_scheme="dark" if dark else "light")
            return page

        def shot(page, name: str) -> None:
            page.screenshot(path=str(folder / f"{name}.png"), full_page=True)

        try:
            yield open_page, shot
        finally:
            browser.close()
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def four_section_issue() -> Issue:
    issue = week_of_news()
    for name, slug, position in (("Energy", "energy", 3), ("Economy & Trade", "economy", 4)):
        category = CategoryFactory(name=name, slug=slug, position=position)
        for n in range(2):
            IssueItemFactory(
                issue=issue,
                article=ArticleFactory(
                    category=category, title=f"{name} story {n + 1} of the week"
                ),
            )
    issue.editor_note = (
        "A busy week. Start with [our railway explainer](https://portal.example.com/rail.html)."
    )
    issue.save()
    return issue


@closes_connections
def test_the_digest_reads_in_light_and_dark_with_contents_that_jump(live_server, chromium):
    open_page, shot = chromium
    html = issue_preview(issue=four_section_issue()).email.html
    for dark in (False, True):
        for width in WIDTHS:
            page = open_page(width, dark=dark)
            page.set_content(html, wait_until="domcontentloaded")
            shot(page, f"digest-{'dark' if dark else 'light'}-{width}")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            weak = [t for t in page.evaluate(CONTRASTS_JS) if t[2] < 4.5]
            assert not weak, weak
            if dark:  # the body really turned dark, not just stayed readable
                body = page.evaluate("getComputedStyle(document.body).backgroundColor")
                assert body == "rgb(17, 24, 39)"
            page.close()
    # The contents jump to their section.
    page = open_page(375)
    page.set_content(html, wait_until="domcontentloaded")
    assert page.inner_text(".toc").count("stories") == 4
    page.click(".toc >> text=Energy")
    page.wait_for_function("window.scrollY > 0")
    page.wait_for_timeout(300)  # let the jump settle
    top, scrolled, bottom, height = page.evaluate(
        "[document.getElementById('section-' + "
        "[...document.querySelectorAll('.toc a')].find(a => a.textContent === 'Energy')"
        ".hash.split('-')[1]).getBoundingClientRect().top, window.scrollY, "
        "document.documentElement.scrollHeight - window.innerHeight, window.innerHeight]"
    )
    # The section comes to the top, or, when too little follows it for that (fonts
    # change the page's height), the page ends with the section in view.
    assert abs(top) < 5 or (scrolled == bottom and 0 <= top < height / 2), (top, scrolled)


@closes_connections
def test_archive_issue_and_preferences_pages_at_desktop_and_phone_width(live_server, chromium):
    open_page, shot = chromium
    issue = four_section_issue()
    Issue.objects.filter(pk=issue.pk).update(status=Issue.Status.SENT, sent_at=timezone.now())
    reader = issue.newsletter.subscribers.first()
    prefs = f"{live_server.url}/newsletter/preferences/{reader_tokens.make_token(reader, 'preferences')}/"
    for width in WIDTHS:
        page = open_page(width)
        for name, url in (
            ("archive", "/newsletter/archive/"),
            ("issue", f"/newsletter/archive/{issue.number}/"),
        ):
            page.goto(live_server.url + url)
            shot(page, f"{name}-{width}")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
        # The issue page's subscribe box and share links are there without JavaScript.
        assert page.locator(".subscribe-box input[type=email]").is_visible()
        assert page.locator(".share-links a").count() >= 5
        # The skip link is the first thing Tab reaches, and it shows itself.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip-link"
        assert page.locator(".skip-link").bounding_box()["y"] >= 0
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"

        page.goto(prefs)
        shot(page, f"preferences-{width}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        # A failed erase: the view lands on the error summary, not at the top.
        page.click("text=Erase my data")
        page.wait_for_selector(".error-summary")
        assert page.evaluate("document.activeElement.id") == "error-summary"
        box = page.locator(".error-summary").bounding_box()
        assert 0 <= box["y"] < 900, box
        assert page.evaluate("window.scrollY") > 500
        shot(page, f"preferences-erase-error-{width}")
        page.close()


@closes_connections
def test_the_editors_issue_page_at_desktop_and_phone_width(live_server, chromium):
    open_page, shot = chromium
    issue = four_section_issue()
    user = StaffUserFactory(username="chen", groups=["Publishers"])
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_issue", "change_issue"])
    )
    for width in WIDTHS:
        page = open_page(width)
        page.goto(f"{live_server.url}/admin/login/?next=/admin/newsletter/issue/{issue.pk}/change/")
        page.fill("#id_username", "chen")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_selector(".issue-panel")
        shot(page, f"admin-issue-{width}")
        if width == 1280:  # no sideways scroll on a laptop screen
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            labels = page.locator(".issue-items tr.has_original .issue-flag span").all_inner_texts()
            assert labels.count("Pinned") == labels.count("Removed") == 8
            page.goto(f"{live_server.url}/admin/")
            shot(page, "admin-home-1280")
            assert page.locator("#dashboard-next").is_visible()
        page.close()
