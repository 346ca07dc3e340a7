"""What every reader page has: a skip link, a favicon, and errors where the eye is."""

from __future__ import annotations

import re

import pytest

from newsletter.tokens import reader_tokens
from tests.factories import IssueFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader_pages(client) -> dict[str, str]:
    subscriber = SubscriberFactory()
    IssueFactory(number=3, status="sent")
    prefs = reader_tokens.make_token(subscriber, "preferences")
    unsub = reader_tokens.make_token(subscriber, "unsubscribe")
    return {
        "subscribe": "/newsletter/subscribe/",
        "archive": "/newsletter/archive/",
        "issue": "/newsletter/archive/3/",
        "preferences": f"/newsletter/preferences/{prefs}/",
        "unsubscribe": f"/newsletter/unsubscribe/{unsub}/",
        "privacy": "/newsletter/privacy/",
        "ask": "/newsletter/ask/",
        "write": "/newsletter/write-to-us/",
        "bad link": "/newsletter/preferences/1-nonsense/",
    }


def test_every_reader_page_starts_with_a_skip_link_to_the_content_and_names_a_favicon(
    client, reader_pages
):
    for name, url in reader_pages.items():
        page = client.get(url).content.decode()
        body = page[page.index("<body>") :]
        first_link = re.search(r"<a [^>]*>[^<]*</a>", body).group(0)
        assert 'class="skip-link" href="#main"' in first_link and "Skip to content" in first_link, (
            name
        )
        assert '<main id="main" tabindex="-1">' in page, name
        assert '<link rel="icon" href="/static/newsletter/favicon.svg"' in page, name


def test_the_favicon_is_served_at_the_address_browsers_ask_for(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == "/static/newsletter/favicon.ico"


def test_a_failed_erase_puts_a_focused_error_summary_beside_the_erase_form(client, reader_pages):
    page = client.post(reader_pages["preferences"], {"action": "erase"}).content.decode()
    summary = re.search(r'<div class="error-summary"[^>]*>', page).group(0)
    assert 'tabindex="-1"' in summary and "autofocus" in summary
    # The summary sits in the Leave section, next to the form that failed, not at the top.
    assert page.index('id="h-leave"') < page.index('class="error-summary"')
    assert page.count('class="error-summary"') == 1
    assert 'href="#id_confirm"' in page and "Tick the box to confirm" in page
