"""The digest as a first-time reader meets it: contents, contrast, dark mode, a whole test copy."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from newsletter.digest import digest_build, digest_render
from newsletter.models import Issue
from newsletter.services.issues import issue_send_test, issue_start_sending
from tests.conftest import SITE
from tests.contrast import contrast, texts_of
from tests.factories import (
    ArticleFactory,
    IssueFactory,
    IssueItemFactory,
    SubscriberFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("site")]
URL = re.compile(r"https?://[^\s<>\"']+")


@pytest.fixture
def issue_no_31(finance, energy) -> Issue:
    """Draft No. 31: three Finance stories and one Energy story, and an editor's note with
    a link."""
    issue = IssueFactory(
        number=31,
        editor_note="Read [our explainer](https://portal.example.com/explainer.html) first.",
    )
    for title, category in [
        ("ICBC and Alipay extend deposit cooperation", finance),
        ("Central bank injects liquidity", finance),
        ("Silk Road Fund backs a bank in Kazakhstan", finance),
        ("Solar plant in Uzbekistan connects to the grid", energy),
    ]:
        IssueItemFactory(issue=issue, article=ArticleFactory(title=title, category=category))
    return issue


def rendered(issue: Issue):
    digest = digest_build(issue)
    return digest_render(digest, digest.section_keys)


def test_the_digest_opens_with_contents_that_jump_to_each_section_with_its_count(issue_no_31):
    email = rendered(issue_no_31)
    contents = email.html[email.html.index("In this issue") : email.html.index('class="section"')]
    assert re.search(
        r'href="#section-\d+"[^>]*>Finance</a>\s*<span[^>]*>3 stories</span>', contents
    )
    assert re.search(r'href="#section-\d+"[^>]*>Energy</a>\s*<span[^>]*>1 story</span>', contents)
    for anchor in re.findall(r'href="#([^"]+)"', email.html):
        assert f'id="{anchor}"' in email.html and f'name="{anchor}"' in email.html
    # The plain-text part has the same overview.
    assert "In this issue:\n  - Finance (3)\n  - Energy (1)" in email.text


def test_a_digest_of_one_section_needs_no_contents(issue_no_31):
    digest = digest_build(issue_no_31)
    finance_only = (digest.sections[0].key,)
    email = digest_render(digest, finance_only)
    assert "In this issue" not in email.html and "In this issue" not in email.text


def test_every_text_in_the_digest_reaches_4_5_to_1_against_its_background(issue_no_31):
    html = rendered(issue_no_31).html
    texts = texts_of(html)
    weak = [(t.text, t.color, t.background, round(t.ratio, 2)) for t in texts if t.ratio < 4.5]
    assert not weak
    # The meta line and the footer are among the texts measured, on their own backgrounds.
    meta = next(t for t in texts if "item-meta" in t.classes)
    footer = next(t for t in texts if t.classes == "footer")
    assert meta.ratio >= 4.5 and footer.ratio >= 4.5
    assert footer.background.lower() == "#f5f7fa"
    assert "#7b8794" not in html  # the old 3.5:1 grey is gone


def test_links_in_the_editors_note_use_the_brand_colour(issue_no_31):
    html = rendered(issue_no_31).html
    link = re.search(r'<a href="https://portal.example.com/explainer.html"[^>]*>', html).group(0)
    assert "color: #9b1c1c" in link


def test_the_digest_declares_light_and_dark_and_restyles_text_for_dark(issue_no_31):
    html = rendered(issue_no_31).html
    assert '<meta name="color-scheme" content="light dark">' in html
    assert '<meta name="supported-color-schemes" content="light dark">' in html
    dark = html[html.index("@media (prefers-color-scheme: dark)") :]
    dark = dark[: dark.index("\n  }\n")]
    # Every dark colour pair the stylesheet sets reads at 4.5:1: light text on dark.
    card = re.search(r"\.card[^{]*\{ background: (#\w+)", dark).group(1)
    for colour in set(re.findall(r"[^-]color: (#\w+) !important", dark)):
        assert contrast(colour, card) >= 4.5, colour
    # Text classes that carry a light-mode colour inline all get a dark-mode one.
    for cls in ("item-title", "item-meta", "item-abstract", "note", "footer", "toc a", "section"):
        assert re.search(rf"\.{re.escape(cls)}\b[^{{]*\{{[^}}]*color", dark), cls


def test_a_test_copys_view_in_browser_opens_a_signed_preview_of_the_draft(client, issue_no_31):
    issue_send_test(issue=issue_no_31, to=["editor@example.com"])
    (message,) = mail.outbox
    view = next(url for url in URL.findall(message.body) if "/newsletter/preview/" in url)
    assert view in message.alternatives[0][0]
    page = client.get(view.removeprefix(SITE))
    assert page.status_code == 200
    assert page["X-Robots-Tag"] == "noindex, nofollow"
    body = page.content.decode()
    assert "ICBC and Alipay extend deposit cooperation" in body
    assert "Preview of an issue that is not public yet" in body
    # The draft is still not on the public archive, and a tampered link is a 404.
    assert client.get("/newsletter/archive/31/").status_code == 404
    assert client.get(view.removeprefix(SITE)[:-3] + "xx/").status_code == 404


def test_a_preview_link_stops_working_after_thirty_days(client, issue_no_31):
    issue_send_test(issue=issue_no_31, to=["editor@example.com"])
    view = next(u for u in URL.findall(mail.outbox[0].body) if "/newsletter/preview/" in u)
    with time_machine.travel(timezone.now() + timedelta(days=31)):
        assert client.get(view.removeprefix(SITE)).status_code == 404


def test_readers_copies_link_to_the_public_archive_page(issue_no_31, run_on_commit):
    SubscriberFactory()
    with run_on_commit():
        issue_start_sending(issue=issue_no_31)
    (message,) = mail.outbox
    assert f"View this issue in your browser: {SITE}/newsletter/archive/31/" in message.body
    assert "/newsletter/preview/" not in message.body
