"""A reader in a real browser: subscribe, confirm from the email, choose sections, download
their data and unsubscribe; the identifying code and the portal's snippet too.

Playwright drives Debian's Chromium against the live test server. Screenshots of every
page, at desktop and phone width, go to test-output/<test name>/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from captcha.models import CaptchaStore
from django.core import mail
from django.db import connections

from newsletter.models import Subscriber
from tests.factories import CategoryFactory
from tests.reader_steps import html_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
URL = re.compile(r"https?://[^\s<>\"']+")


@pytest.fixture
def browser(monkeypatch):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI=true and {CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the test
    # makes between browser steps are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
        # While Playwright's loop runs, Django keeps this thread's connections in a
        # context variable of their own; close them here, or one outlives the test run
        # and PostgreSQL refuses to drop the test database.
        connections.close_all()


@pytest.fixture
def shots(request):
    """Return a function that saves a full-page screenshot under test-output/<test>/."""
    folder = ROOT / "test-output" / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)

    def shoot(page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return shoot


@pytest.fixture
def site(live_server, settings):
    settings.SITE_URL = live_server.url  # the links in the emails point at the live server
    settings.NEWSLETTER_MIN_FILL_SECONDS = 2
    for position, name in enumerate(["Economy & Trade", "Finance", "Infrastructure", "Energy"]):
        CategoryFactory(name=name, position=position)
    return live_server.url


def email_link(message, part: str) -> str:
    return next(url for url in URL.findall(message.body) if part in url)


def test_a_reader_subscribes_confirms_chooses_sections_downloads_data_and_unsubscribes(
    browser, site, shots
):
    desktop = browser.new_page(viewport=DESKTOP)
    phone = browser.new_page(viewport=PHONE, is_mobile=True, device_scale_factor=2)

    # 1. The subscription form.
    phone.goto(f"{site}/newsletter/subscribe/")
    shots(phone, "01-subscribe-phone")
    desktop.goto(f"{site}/newsletter/subscribe/")
    desktop.get_by_role("textbox", name="Email address").fill("li.wei@example.com")
    desktop.get_by_label("Name").fill("Li Wei")
    desktop.get_by_label("Organisation").fill("Silk Road Bank")
    desktop.get_by_label("Country or region").select_option("CN")
    desktop.get_by_label("Finance").check()
    desktop.get_by_label("Infrastructure").check()
    desktop.get_by_label(re.compile("Yes, send me Belt & Road Weekly")).check()
    shots(desktop, "01-subscribe-desktop")
    desktop.wait_for_timeout(2100)  # a person takes longer than the minimum fill time
    desktop.get_by_role("button", name="Subscribe").click()
    assert desktop.get_by_role("heading", level=1).inner_text() == "Check your inbox"
    shots(desktop, "02-check-your-inbox-desktop")

    # 2. The confirmation email, and its link: GET shows a button, the click confirms.
    (confirmation,) = mail.outbox
    assert confirmation.to == ["li.wei@example.com"]
    assert "Li Wei" not in confirmation.body and "Li Wei" not in html_of(confirmation)
    confirm_url = email_link(confirmation, "/newsletter/confirm/")
    phone.goto(confirm_url)
    shots(phone, "03-confirm-phone")
    desktop.goto(confirm_url)
    shots(desktop, "03-confirm-desktop")
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING
    desktop.get_by_role("button", name="Confirm").click()
    assert desktop.get_by_role("heading", level=1).inner_text() == "You are subscribed"
    shots(desktop, "04-confirmed-desktop")
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE

    # 3. The welcome email's preferences link: change sections.
    welcome = mail.outbox[1]
    assert welcome.subject == "Welcome to Belt & Road Weekly"
    preferences_url = email_link(welcome, "/newsletter/preferences/")
    desktop.goto(preferences_url)
    desktop.get_by_label("Finance").uncheck()
    desktop.get_by_label("Energy").check()
    desktop.get_by_role("button", name="Save").click()
    assert "Saved." in desktop.get_by_role("status").inner_text()
    shots(desktop, "05-preferences-saved-desktop")
    phone.goto(preferences_url)
    shots(phone, "05-preferences-phone")
    reader = Subscriber.objects.get()
    assert sorted(c.name for c in reader.categories.all()) == ["Energy", "Infrastructure"]

    # 4. Download my data.
    with desktop.expect_download() as download_info:
        desktop.get_by_role("button", name="Download my data").click()
    download = download_info.value
    assert download.suggested_filename == "belt-road-weekly-my-data.json"
    data = json.loads(Path(download.path()).read_text())
    assert data["profile"]["email"] == "li.wei@example.com"
    assert data["profile"]["sections"] == ["Infrastructure", "Energy"]
    assert [r["action"] for r in data["consent_history"]] == ["signup", "confirm", "change"]

    # 5. Unsubscribe through the link every email carries.
    unsubscribe_url = welcome.extra_headers["List-Unsubscribe"].strip("<>")
    assert urlsplit(unsubscribe_url).netloc == urlsplit(site).netloc
    phone.goto(unsubscribe_url)
    shots(phone, "06-unsubscribe-phone")
    desktop.goto(unsubscribe_url)
    shots(desktop, "06-unsubscribe-desktop")
    desktop.get_by_role("button", name="Unsubscribe", exact=True).click()
    assert desktop.get_by_role("heading", level=1).inner_text() == "You are unsubscribed"
    shots(desktop, "07-unsubscribed-desktop")
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED


def test_the_identifying_code_reloads_in_place_and_lets_a_person_through(
    browser, site, shots, settings
):
    settings.NEWSLETTER_CAPTCHA_ALWAYS = True
    page = browser.new_page(viewport=DESKTOP)
    page.goto(f"{site}/newsletter/subscribe/")
    image = page.locator("img.code-image")
    first = image.get_attribute("src")
    shots(page, "01-code-desktop")
    page.get_by_role("button", name="Reload").click()
    page.wait_for_function(f"document.querySelector('img.code-image').src.indexOf('{first}') < 0")
    assert page.locator("input[name=captcha_0]").input_value() in image.get_attribute("src")
    key = page.locator("input[name=captcha_0]").input_value()

    page.get_by_role("textbox", name="Email address").fill("kofi@example.com")
    page.get_by_label(re.compile("Yes, send me Belt & Road Weekly")).check()
    page.get_by_label("Identifying code").fill(CaptchaStore.objects.get(hashkey=key).response)
    phone = browser.new_page(viewport=PHONE, is_mobile=True, device_scale_factor=2)
    phone.goto(f"{site}/newsletter/subscribe/")
    shots(phone, "01-code-phone")
    page.wait_for_timeout(2100)
    page.get_by_role("button", name="Subscribe").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Check your inbox"
    assert [m.to for m in mail.outbox] == [["kofi@example.com"]]


def test_the_portals_plain_html_snippet_opens_our_form_filled_in(browser, site, shots):
    page = browser.new_page(viewport=DESKTOP)
    page.goto(f"{site}/newsletter/subscribe/embed/")
    shots(page, "01-snippet-page")
    snippet = page.locator("pre.code").inner_text()
    # The portal is another origin: serve the snippet from a blank page of its own.
    page.set_content(f"<html><body><h1>Portal article</h1>{snippet}</body></html>")
    page.get_by_role("textbox", name="Email address").fill("portal.reader@example.com")
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_url(f"{site}/newsletter/subscribe/embed/")
    assert (
        page.get_by_role("textbox", name="Email address").input_value()
        == "portal.reader@example.com"
    )
    assert "Almost done" in page.get_by_role("status").inner_text()
    shots(page, "02-prefilled")
    assert not Subscriber.objects.exists()
    page.get_by_label(re.compile("Yes, send me Belt & Road Weekly")).check()
    page.wait_for_timeout(2100)
    page.get_by_role("button", name="Subscribe").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Check your inbox"
    assert Subscriber.objects.get().source == "subscribe-page"
