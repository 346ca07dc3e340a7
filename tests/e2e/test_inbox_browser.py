"""A reader asks a question and an editor answers it, in a real browser; a story with a file too.

Playwright drives Debian's Chromium against the live test server (the fixtures of the
reader journey). Screenshots at desktop and phone width go to test-output/<test name>/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from captcha.models import CaptchaStore
from django.core import mail

from inbox.models import Reply, Ticket
from newsletter.models import Subscriber
from tests.e2e.test_reader_browser import (  # noqa: F401 - fixtures
    DESKTOP,
    PHONE,
    browser,
    email_link,
    shots,
    site,
)
from tests.factories import StaffUserFactory
from tests.inbox_steps import PDF

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"
QUESTION = "Where can I read the full report on the China-Laos Railway's first year of freight?"


def _type_the_code(page) -> None:
    key = page.locator("input[name=captcha_0]").input_value()
    page.get_by_label("Identifying code").fill(CaptchaStore.objects.get(hashkey=key).response)


def _log_in(page, site: str, username: str) -> None:
    page.goto(f"{site}/admin/login/?next=/admin/inbox/ticket/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/inbox/ticket/")


def test_a_reader_asks_a_question_and_an_editor_answers_it(browser, site, shots):
    editor = StaffUserFactory(
        username="wang", first_name="Wang", last_name="Fang", groups=["Editors"]
    )
    phone = browser.new_page(viewport=PHONE, is_mobile=True, device_scale_factor=2)
    phone.goto(f"{site}/newsletter/ask/")
    shots(phone, "01-ask-phone")

    # 1. The reader asks, and ticks the newsletter box too.
    reader = browser.new_page(viewport=DESKTOP)
    reader.goto(f"{site}/newsletter/ask/")
    reader.get_by_label("Your question").fill(QUESTION)
    reader.get_by_label("Name").fill("Amina Yusuf")
    reader.get_by_role("textbox", name="Email address").fill("amina@example.org")
    reader.get_by_label("Organisation").fill("Lagos Port Authority")
    reader.get_by_label("Country or region").select_option("NG")
    reader.get_by_label(re.compile("I agree that the Belt & Road Weekly editors")).check()
    reader.get_by_label(re.compile("Yes, send me Belt & Road Weekly")).check()
    _type_the_code(reader)
    shots(reader, "02-ask-filled-desktop")
    reader.wait_for_timeout(2100)  # a person takes longer than the minimum fill time
    reader.get_by_role("button", name="Send my question").click()
    assert reader.get_by_role("heading", level=1).inner_text() == "Thank you for your question"
    shots(reader, "03-thanks-desktop")

    ticket = Ticket.objects.get()
    assert (ticket.status, ticket.body) == ("new", QUESTION)
    ack = next(m for m in mail.outbox if m.subject.startswith("We received your question"))
    assert ack.to == ["amina@example.org"] and ticket.reference in ack.body
    notice = next(m for m in mail.outbox if m.to == [editor.email])
    confirmation = next(m for m in mail.outbox if m.subject.startswith("Confirm your subscription"))
    assert confirmation.to == ["amina@example.org"]
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING

    # 2. The editor follows the link in the notice, logs in and answers.
    desk = browser.new_page(viewport=DESKTOP)
    _log_in(desk, site, "wang")
    shots(desk, "04-tickets-desktop")
    desk.goto(email_link(notice, "/admin/inbox/ticket/"))
    assert QUESTION in desk.inner_text(".field-body")
    desk.get_by_label("Answer by email").fill(
        "Dear Amina,\n\nThe full report is in our archive: issue 12, Infrastructure section."
    )
    shots(desk, "05-ticket-answering-desktop")
    desk.click("input[name=_continue]")
    desk.wait_for_selector(".messagelist .success")
    assert "is on its way to amina@example.org" in desk.inner_text(".messagelist")
    assert "sent to amina@example.org" in desk.inner_text(".field-conversation")
    shots(desk, "06-ticket-answered-desktop")
    desk_phone = browser.new_page(viewport=PHONE, is_mobile=True, device_scale_factor=2)
    _log_in(desk_phone, site, "wang")
    desk_phone.goto(email_link(notice, "/admin/inbox/ticket/"))
    shots(desk_phone, "07-ticket-phone")

    ticket.refresh_from_db()
    assert (ticket.status, ticket.assignee) == ("answered", editor)
    reply = Reply.objects.get()
    assert (reply.author_name, reply.to, reply.sent_at is not None) == (
        "Wang Fang",
        "amina@example.org",
        True,
    )
    answer = next(m for m in mail.outbox if m.subject == f"Re: your question {ticket.reference}")
    assert answer.to == ["amina@example.org"]
    assert "issue 12, Infrastructure section" in answer.body


def test_a_contributor_sends_a_story_with_a_file_and_the_editor_downloads_it(
    browser, site, shots, tmp_path
):
    StaffUserFactory(username="wang", groups=["Editors"])
    phone = browser.new_page(viewport=PHONE, is_mobile=True, device_scale_factor=2)
    phone.goto(f"{site}/newsletter/write-to-us/")
    shots(phone, "01-write-phone")

    page = browser.new_page(viewport=DESKTOP)
    page.goto(f"{site}/newsletter/write-to-us/")
    page.get_by_label("Name").fill("Erlan Abenov")
    page.get_by_role("textbox", name="Email address").fill("erlan@example.kz")
    page.get_by_label("Your story").fill("Our cooperative now ships apples to Xi'an by rail.")
    page.get_by_role("textbox", name="Link").fill("https://example.kz/apples")
    program = tmp_path / "story.pdf"
    program.write_bytes(b"MZ\x90\x00" + b"\x00" * 60)
    page.get_by_label("Attachment").set_input_files(str(program))
    page.get_by_label(re.compile("I wrote what I send")).check()
    _type_the_code(page)
    page.wait_for_timeout(2100)
    page.get_by_role("button", name="Send my story").click()
    assert "We take only these kinds of file" in page.inner_text("#error-summary")
    shots(page, "02-refused-file-desktop")
    assert not Ticket.objects.exists()

    story = tmp_path / "apples.pdf"
    story.write_bytes(PDF)
    page.get_by_label("Attachment").set_input_files(str(story))
    page.get_by_label(re.compile("I wrote what I send")).check()
    _type_the_code(page)
    page.wait_for_timeout(2100)
    page.get_by_role("button", name="Send my story").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Thank you for your story"
    ticket = Ticket.objects.get()
    assert ticket.attachment_name == "apples.pdf"

    desk = browser.new_page(viewport=DESKTOP)
    _log_in(desk, site, "wang")
    desk.get_by_role("link", name=ticket.reference).click()
    shots(desk, "03-story-ticket-desktop")
    with desk.expect_download() as download_info:
        desk.get_by_role("link", name="apples.pdf").click()
    download = download_info.value
    assert download.suggested_filename == "apples.pdf"
    assert Path(download.path()).read_bytes() == PDF


def test_a_file_is_kept_while_the_contributor_fixes_the_form(browser, site, shots, tmp_path):
    # Issue 15: a file alone is a story; the consent box forgotten must not cost the file.
    story = tmp_path / "Silk Road harvest.pdf"
    story.write_bytes(PDF)
    for viewport, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page = browser.new_page(viewport=viewport)
        page.goto(f"{site}/newsletter/write-to-us/")
        page.get_by_label("Name").fill("Erlan Abenov")
        page.get_by_role("textbox", name="Email address").fill(f"erlan-{name}@example.kz")
        page.get_by_label("Attachment").set_input_files(str(story))
        _type_the_code(page)
        page.wait_for_timeout(2100)
        page.get_by_role("button", name="Send my story").click()
        kept = page.locator("#file-kept")
        assert kept.inner_text() == (
            "Your file “Silk Road harvest.pdf” is kept — attach another to replace it."
        )
        kept.scroll_into_view_if_needed()
        shots(page, f"01-file-kept-{name}")
        page.get_by_label(re.compile("I wrote what I send")).check()
        _type_the_code(page)
        page.wait_for_timeout(2100)
        page.get_by_role("button", name="Send my story").click()
        assert page.get_by_role("heading", level=1).inner_text() == "Thank you for your story"
        ticket = Ticket.objects.get(email=f"erlan-{name}@example.kz")
        assert (ticket.attachment_name, ticket.body) == ("Silk Road harvest.pdf", "")
