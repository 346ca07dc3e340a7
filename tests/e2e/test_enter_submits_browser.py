"""Enter (a phone's Go key) sends every form that shows the identifying code; Reload still works.

Before, Reload was the form's first submit button, so Enter threw the answer away
and showed a new picture. Checked in Chromium with JavaScript on and off.
"""

from __future__ import annotations

import re
import shutil

import pytest
from captcha.models import CaptchaStore

from inbox.models import Ticket
from newsletter.models import Subscriber
from tests.conftest import IN_CI
from tests.e2e.test_reader_browser import (  # noqa: F401 - fixtures
    DESKTOP,
    PHONE,
    browser,
    shots,
    site,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _type_the_code(page) -> None:
    key = page.locator("input[name=captcha_0]").input_value()
    page.get_by_label("Identifying code").fill(CaptchaStore.objects.get(hashkey=key).response)


def _ask(page, site: str) -> None:
    page.goto(f"{site}/newsletter/ask/")
    page.get_by_label("Your question").fill("Which ports does the Piraeus line serve?")
    page.get_by_label("Name").fill("Amina Yusuf")
    page.get_by_role("textbox", name="Email address").fill("amina@example.org")
    page.get_by_label(re.compile("I agree that the Belt & Road Weekly editors")).check()
    _type_the_code(page)
    page.wait_for_timeout(2100)  # a person takes longer than the minimum fill time


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_enter_in_the_code_box_sends_the_question(browser, site, shots, javascript):
    context = browser.new_context(viewport=PHONE, is_mobile=True, java_script_enabled=javascript)
    page = context.new_page()
    _ask(page, site)
    page.get_by_label("Identifying code").press("Enter")
    page.wait_for_load_state()
    shots(page, f"enter-{'js' if javascript else 'nojs'}")
    assert page.get_by_role("heading", level=1).inner_text() == "Thank you for your question"
    assert Ticket.objects.count() == 1
    context.close()


def test_enter_in_the_email_box_sends_the_subscription_form(browser, site, settings, shots):
    settings.NEWSLETTER_CAPTCHA_ALWAYS = True
    page = browser.new_page(viewport=DESKTOP)
    page.goto(f"{site}/newsletter/subscribe/")
    _type_the_code(page)
    page.get_by_label(re.compile("Yes, send me Belt & Road Weekly")).check()
    page.get_by_role("textbox", name="Email address").fill("kofi@example.com")
    page.wait_for_timeout(2100)
    page.get_by_role("textbox", name="Email address").press("Enter")
    page.wait_for_load_state()
    shots(page, "subscribe-enter")
    assert page.get_by_role("heading", level=1).inner_text() == "Check your inbox"
    assert Subscriber.objects.filter(email="kofi@example.com").exists()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_reload_still_gives_a_new_picture_and_keeps_what_was_typed(browser, site, javascript):
    context = browser.new_context(viewport=DESKTOP, java_script_enabled=javascript)
    page = context.new_page()
    _ask(page, site)
    before = page.locator("input[name=captcha_0]").input_value()
    page.get_by_role("button", name="Reload").click()
    page.wait_for_function(
        "key => document.querySelector('input[name=captcha_0]').value !== key", arg=before
    )
    assert page.get_by_label("Your question").input_value().startswith("Which ports")
    assert Ticket.objects.count() == 0
    context.close()


@pytest.mark.skipif(
    not shutil.which("flite") and not IN_CI, reason="Debian's flite is not installed here"
)
def test_the_audio_code_is_reachable_by_keyboard(browser, site, shots):
    page = browser.new_page(viewport=DESKTOP)
    page.goto(f"{site}/newsletter/ask/")
    page.get_by_role("button", name="Reload").focus()
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Listen to the code"
    href = page.evaluate("document.activeElement.href")
    shots(page, "audio-link-focused")
    response = page.request.get(href)
    assert response.status == 200 and response.headers["content-type"] == "audio/wav"
    assert response.body()[:4] == b"RIFF"
