"""Reader questions and contributions: the two forms, what they store and send, bad input, erasure."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core import mail
from django.test import Client

from inbox.models import Ticket
from newsletter.models import ConsentRecord, Subscriber
from tests.factories import StaffUserFactory, SubscriberFactory
from tests.inbox_steps import (
    ASK,
    EXE,
    JPEG,
    PDF,
    PNG,
    QUESTION,
    STORY,
    TEXT,
    WRITE,
    ask_data,
    docx,
    docx_bomb,
    solved_code,
    upload,
    write_data,
)
from tests.reader_steps import (
    SUBSCRIBE,
    client,  # noqa: F401 - the fixture: requests that commit
    html_of,
    link,
    sent_to,
    signup_data,
    without_csrf,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def editors():
    return [
        StaffUserFactory(username="desk", groups=["Editors"]),
        StaffUserFactory(username="chief", groups=["Publishers"]),
    ]


def _everything_in(message) -> str:
    return message.subject + message.body + html_of(message)


# --- The pages ---------------------------------------------------------------------------


def test_the_ask_page_shows_every_field_the_code_and_both_consent_texts(client):
    response = client.get(ASK)
    page = response.content.decode()
    assert response.status_code == 200
    assert "Ask Us A Question" in page
    for field in ("body", "name", "email", "organisation", "country", "consent", "subscribe"):
        assert f'<label for="id_{field}">' in page
    assert 'name="captcha_1"' in page and 'name="reload_code"' in page
    assert '<div class="hp" aria-hidden="true">' in page
    assert "keep my question and these details to answer me" in page
    # The newsletter box carries the newsletter's exact consent text, and is not ticked.
    assert "Yes, send me Belt &amp; Road Weekly by email" in page
    assert 'name="subscribe" id="id_subscribe" checked' not in page
    assert 'name="attachment"' not in page and 'enctype="multipart/form-data"' not in page


def test_the_write_to_us_page_takes_a_link_and_a_file(client):
    page = client.get(WRITE).content.decode()
    assert "Tell us your Belt &amp; Road story" in page
    assert 'enctype="multipart/form-data"' in page
    assert 'type="url" name="link"' in page
    assert 'type="file" name="attachment" accept=".pdf,.docx,.txt,.jpg,.jpeg,.png"' in page
    assert "PDF, Word (.docx), plain text, JPEG, PNG, up to 10.0\xa0MB" in page
    assert "consider it for publication" in page


def test_every_page_links_to_both_forms(client):
    page = client.get(SUBSCRIBE).content.decode()
    assert 'href="/newsletter/ask/"' in page and 'href="/newsletter/write-to-us/"' in page


# --- A question --------------------------------------------------------------------------


def test_a_question_becomes_a_new_ticket_acknowledged_with_a_reference_and_told_to_editors(
    client, editors
):
    response = client.post(
        ASK, ask_data(), HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="198.51.100.7"
    )
    assert response.status_code == 200
    assert "Thank you for your question" in response.content.decode()
    ticket = Ticket.objects.get()
    assert re.fullmatch(r"Q-[A-HJ-NP-Z2-9]{6}", ticket.reference)
    assert (ticket.kind, ticket.status, ticket.assignee) == ("question", "new", None)
    assert (ticket.name, ticket.email, ticket.organisation, ticket.country) == (
        "Amina Yusuf",
        "amina@example.org",
        "Lagos Port Authority",
        "NG",
    )
    assert ticket.body == QUESTION
    assert (ticket.ip, ticket.user_agent, ticket.form) == (
        "198.51.100.7",
        "Firefox/140",
        "ask-page",
    )
    assert ticket.consent_text.startswith("I agree that the Belt & Road Weekly editors keep")
    assert not ticket.subscribe_requested and not Subscriber.objects.exists()

    (ack,) = sent_to("amina@example.org")
    assert ack.subject == f"We received your question ({ticket.reference})"
    assert ticket.reference in ack.body and ticket.reference in html_of(ack)
    assert ack.from_email == "Belt & Road Weekly <weekly@news.example.org>"
    # Nothing the sender typed comes back to the address they typed.
    for typed in ("Amina", "Lagos", "China-Laos", "railway"):
        assert typed not in _everything_in(ack)

    # The Editors group hears of it, as of every draft (Publishers answer too, unprompted).
    (notice,) = [m for m in mail.outbox if m is not ack]
    assert notice.to == ["desk@newsroom.example.org"]
    assert notice.subject == f"New question {ticket.reference}"
    assert "Amina Yusuf <amina@example.org>" in notice.body
    assert "Nigeria" in notice.body and QUESTION in notice.body
    assert f"/admin/inbox/ticket/{ticket.pk}/change/" in link(notice, "/admin/inbox/ticket/")


def test_editors_without_an_address_or_inactive_get_no_notice(client):
    StaffUserFactory(username="ghost", email="", groups=["Editors"])
    StaffUserFactory(username="gone", is_active=False, groups=["Editors"])
    client.post(ASK, ask_data())
    assert [m.to for m in mail.outbox] == [["amina@example.org"]]


def test_text_is_stored_as_typed_with_line_breaks_counted_as_the_reader_saw_them(client):
    as_seen = "Line one.\n" + "x" * 4990
    sent = as_seen.replace("\n", "\r\n")
    assert (len(as_seen), len(sent)) == (5000, 5001)
    response = client.post(ASK, ask_data(body=sent))
    assert response.status_code == 200
    assert Ticket.objects.get().body == as_seen


def test_only_a_filled_honeypot_gets_the_same_page_and_stores_and_sends_nothing(client):
    good = client.post(ASK, ask_data(email="a@example.org"))
    Ticket.objects.all().delete()
    mail.outbox.clear()
    trapped = client.post(ASK, ask_data(email="a@example.org", website="http://spam.example"))
    assert without_csrf(good.content) == without_csrf(trapped.content)
    assert not Ticket.objects.exists() and mail.outbox == []


def test_a_question_sent_too_fast_comes_back_with_a_sentence_and_what_was_typed(client):
    response = client.post(ASK, ask_data(email="a@example.org", stamp=None))
    page = response.content.decode().replace("&#x27;", "'")
    assert response.status_code == 400
    assert "You sent the form back very quickly" in page
    assert "China-Laos railway?</textarea>" in page and 'name="captcha_1"' in page
    assert "Thank you" not in page
    assert not Ticket.objects.exists() and mail.outbox == []


def test_a_wrong_code_gets_a_new_picture_keeps_what_was_typed_and_stores_nothing(client):
    data = ask_data(captcha_1="WRONG")
    response = client.post(ASK, data)
    page = response.content.decode()
    assert response.status_code == 400
    assert "The identifying code did not match" in page
    assert f'value="{data["captcha_0"]}"' not in page  # a new picture
    assert "China-Laos railway?</textarea>" in page and 'value="Amina Yusuf"' in page
    assert not Ticket.objects.exists() and mail.outbox == []


def test_the_reload_button_works_without_javascript_and_keeps_what_was_typed(client):
    data = ask_data(reload_code="1")
    response = client.post(ASK, data)
    page = response.content.decode()
    assert response.status_code == 200
    assert f'value="{data["captcha_0"]}"' not in page
    assert "China-Laos railway?</textarea>" in page and 'value="amina@example.org"' in page
    assert not Ticket.objects.exists()


def test_the_ip_limits_are_shared_with_the_subscription_form(client, settings):
    settings.NEWSLETTER_IP_SOFT_LIMIT = 1
    settings.NEWSLETTER_IP_HARD_LIMIT = 3
    client.post(ASK, ask_data(email="one@example.org"))
    # One question was enough for the subscription form to ask for the code too.
    assert b'name="captcha_1"' in client.get(SUBSCRIBE).content
    client.post(SUBSCRIBE, signup_data(email="two@example.org", **solved_code()))
    client.post(WRITE, write_data(email="three@example.org"))
    dropped = client.post(ASK, ask_data(email="four@example.org"))
    assert dropped.status_code == 429 and b"Too many forms were sent" in dropped.content
    assert sorted(Ticket.objects.values_list("email", flat=True)) == [
        "one@example.org",
        "three@example.org",
    ]
    assert Subscriber.objects.get().email == "two@example.org"
    assert not sent_to("four@example.org")


def test_past_the_address_limit_the_form_comes_back_saying_so(client, settings):
    settings.NEWSLETTER_ADDRESS_LIMIT = 2
    settings.NEWSLETTER_IP_HARD_LIMIT = 50
    for expected in (200, 200, 429):
        response = client.post(ASK, ask_data(email="target@example.org"))
        assert response.status_code == expected
    assert b"given to us many times today" in response.content
    assert Ticket.objects.count() == 2
    assert len(sent_to("target@example.org")) == 2


def test_the_form_needs_its_csrf_token():
    response = Client(enforce_csrf_checks=True).post(ASK, ask_data())
    assert response.status_code == 403
    assert not Ticket.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"body": "x" * 5001}, "Please shorten your message to 5,000 characters; it has 5,001."),
        ({"body": "  "}, "Please write your message."),
        ({"name": "Amina\r\nBcc: victim@example.org"}, "without line breaks or control characters"),
        ({"organisation": "Port\nAuthority"}, "without line breaks or control characters"),
        ({"email": "amina@example.org\r\nBcc: victim@example.org"}, "cannot contain line breaks"),
        ({"email": "amina@"}, "Enter a valid email address, like name@example.com."),
        ({"name": "x" * 101}, "Ensure this value has at most 100 characters"),
        ({"consent": None}, "Please tick the box to agree, or we cannot keep and answer"),
        ({"country": "XX"}, "Select a valid choice."),
        ({"captcha_1": None}, "Type the identifying code shown in the picture."),
    ],
)
def test_bad_input_gets_a_clear_error_and_stores_and_sends_nothing(client, overrides, error):
    response = client.post(ASK, ask_data(**overrides))
    assert response.status_code == 400
    assert error in response.content.decode().replace("&#x27;", "'")
    assert not Ticket.objects.exists() and mail.outbox == []


# --- A contribution ----------------------------------------------------------------------


def _stored_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_a_contribution_keeps_its_link_and_file_outside_the_web_root(client, settings, editors):
    response = client.post(
        WRITE,
        write_data(attachment=upload("../../My story <draft>.PDF", PDF, "text/html")),
    )
    assert response.status_code == 200
    assert "Thank you for your story" in response.content.decode()
    ticket = Ticket.objects.get()
    assert ticket.kind == "contribution" and ticket.reference.startswith("C-")
    assert ticket.body == STORY and ticket.link == "https://example.org/apples"
    # Stored under a random name in MEDIA_ROOT; the sender's name is kept, made safe.
    (stored,) = _stored_files(settings)
    assert stored.read_bytes() == PDF
    assert re.fullmatch(r"[0-9a-f]{32}\.pdf", stored.name)
    assert stored.parent.parent.parent == Path(settings.MEDIA_ROOT) / "inbox"
    assert (ticket.attachment_name, ticket.attachment_type, ticket.attachment_size) == (
        "My story draft.pdf",
        "application/pdf",
        len(PDF),
    )
    # No URL of the site serves it.
    assert client.get(f"/media/{ticket.attachment.name}").status_code == 404
    assert client.get(f"/{ticket.attachment.name}").status_code == 404
    ack = sent_to("erlan@example.kz")[0]
    assert ack.subject == f"We received your story ({ticket.reference})"
    notice = sent_to("desk@newsroom.example.org")[0]
    assert notice.subject == f"New contribution {ticket.reference}"
    assert "My story draft.pdf (" in notice.body and "https://example.org/apples" in notice.body


@pytest.mark.parametrize(
    ("name", "content", "stored_type"),
    [
        ("story.pdf", PDF, "application/pdf"),
        (
            "story.docx",
            docx(),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        ("notes.txt", TEXT, "text/plain; charset=utf-8"),
        ("photo.jpeg", JPEG, "image/jpeg"),
        ("photo.png", PNG, "image/png"),
    ],
)
def test_it_takes_each_safe_kind_of_file(client, name, content, stored_type):
    response = client.post(WRITE, write_data(attachment=upload(name, content)))
    assert response.status_code == 200
    assert Ticket.objects.get().attachment_type == stored_type


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("story.pdf", EXE),  # a program renamed
        ("story.txt", PDF),  # a PDF pretending to be text
        ("story.docx", docx(macros=True)),  # a macro-enabled document
        ("story.docx", docx(document=False)),  # any ZIP
        ("photo.png", b'<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>'),
        ("story.html", b"<html><script>alert(1)</script></html>"),
        ("story.txt", b"\x00\x01binary"),
        ("photo.jpg", PNG),  # real, but not what its name says
    ],
)
def test_it_refuses_files_of_other_kinds_by_their_content(client, settings, name, content):
    response = client.post(WRITE, write_data(attachment=upload(name, content, "application/pdf")))
    assert response.status_code == 400
    page = response.content.decode()
    assert "We take only these kinds of file: PDF, Word (.docx), plain text, JPEG, PNG." in page
    assert "was not kept while you fix the form: please choose it again" in page
    assert STORY.split("\n")[0] in page  # what was typed is still there
    assert not Ticket.objects.exists() and mail.outbox == [] and _stored_files(settings) == []


def test_it_refuses_a_file_over_the_size_limit(client, settings):
    settings.INBOX_ATTACHMENT_MAX_MB = 1
    big = PDF + b"0" * (1024 * 1024)
    response = client.post(WRITE, write_data(attachment=upload("big.pdf", big)))
    assert response.status_code == 400
    assert "The file is 1.0\xa0MB; the most we take is 1.0\xa0MB." in response.content.decode()
    assert not Ticket.objects.exists() and _stored_files(settings) == []


@pytest.mark.parametrize("bad_link", ["javascript:alert(1)", "ftp://example.org/x", "not a link"])
def test_it_refuses_a_link_that_is_not_a_web_address(client, bad_link):
    response = client.post(WRITE, write_data(link=bad_link))
    assert response.status_code == 400
    assert b"Enter a web address" in response.content
    assert not Ticket.objects.exists()


def test_a_story_may_be_longer_than_a_question_but_not_endless(client):
    assert client.post(WRITE, write_data(body="y" * 20000)).status_code == 200
    response = client.post(WRITE, write_data(body="y" * 20001))
    assert response.status_code == 400
    assert b"20,000 characters; it has 20,001" in response.content


# --- Also subscribe me -------------------------------------------------------------------


def test_also_subscribe_me_goes_through_the_normal_double_opt_in(client):
    client.post(ASK, ask_data(subscribe="on"), REMOTE_ADDR="198.51.100.7")
    ticket = Ticket.objects.get()
    assert ticket.subscribe_requested
    reader = Subscriber.objects.get()
    assert (reader.email, reader.status, reader.name) == (
        "amina@example.org",
        Subscriber.Status.PENDING,
        "Amina Yusuf",
    )
    record = ConsentRecord.objects.get(subscriber=reader)
    assert (record.action, record.form, record.ip) == ("signup", "ask-page", "198.51.100.7")
    assert record.consent_text.version == 1
    subjects = sorted(m.subject for m in sent_to("amina@example.org"))
    assert subjects == [
        "Confirm your subscription to Belt & Road Weekly",
        f"We received your question ({ticket.reference})",
    ]


def test_a_changed_newsletter_consent_text_asks_again_and_stores_nothing(client):
    response = client.post(ASK, ask_data(subscribe="on", consent_version="99"))
    assert response.status_code == 400
    assert b"consent text changed while the form was open" in response.content
    assert not Ticket.objects.exists() and not Subscriber.objects.exists()


# --- Escaping ----------------------------------------------------------------------------


def test_stored_text_is_shown_escaped_in_the_editors_notice(client, editors):
    client.post(
        ASK,
        ask_data(name="<b>Mallory</b>", body='<script>alert("x")</script> & <img src=x>'),
    )
    ticket = Ticket.objects.get()
    assert ticket.name == "<b>Mallory</b>"  # stored as typed
    assert ticket.body == '<script>alert("x")</script> & <img src=x>'
    notice = html_of(sent_to("desk@newsroom.example.org")[0])
    assert "<script>" not in notice and "<img src=x>" not in notice and "<b>Mallory" not in notice
    assert "&lt;script&gt;" in notice and "&lt;b&gt;Mallory&lt;/b&gt;" in notice


# --- Embeddable snippets -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "action"), [(ASK, "/newsletter/ask/embed/"), (WRITE, "/newsletter/write-to-us/embed/")]
)
def test_the_snippet_page_shows_plain_html_that_posts_to_our_site(client, url, action):
    page = client.get(f"{url}embed/").content.decode()
    assert f'action="http://localhost:8000{action}" method="post"' in page
    assert "csrfmiddlewaretoken" not in page.split("<pre")[1].split("</pre>")[0]


def test_the_ask_snippet_only_opens_our_page_filled_in():
    response = Client(enforce_csrf_checks=True).post(
        "/newsletter/ask/embed/",
        {"body": "What is the <b>deadline</b>?", "email": " kofi@example.org "},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "Almost done" in page
    assert "What is the &lt;b&gt;deadline&lt;/b&gt;?</textarea>" in page
    assert 'value="kofi@example.org"' in page
    assert 'name="captcha_1"' in page
    assert not Ticket.objects.exists() and mail.outbox == []


# --- Erasure -----------------------------------------------------------------------------


def test_erasing_through_the_preferences_page_removes_the_readers_questions_and_stories(
    client, settings
):
    from newsletter.tokens import reader_tokens

    reader = SubscriberFactory(email="amina@example.org")
    client.post(ASK, ask_data(email="Amina@Example.org"))
    client.post(WRITE, write_data(email="amina@example.org", attachment=upload("s.pdf", PDF)))
    client.post(ASK, ask_data(email="someone.else@example.org"))
    assert Ticket.objects.count() == 3 and len(_stored_files(settings)) == 1

    token = reader_tokens.make_token(reader, "preferences")
    response = client.post(
        f"/newsletter/preferences/{token}/", {"action": "erase", "confirm": "on"}
    )
    assert response.status_code == 200
    assert list(Ticket.objects.values_list("email", flat=True)) == ["someone.else@example.org"]
    assert _stored_files(settings) == []


def test_the_preferences_page_says_erasure_includes_questions_and_stories(client):
    from newsletter.tokens import reader_tokens

    token = reader_tokens.make_token(SubscriberFactory(), "preferences")
    page = client.get(f"/newsletter/preferences/{token}/").content.decode()
    assert "with any questions and stories you sent the editors" in page


def test_download_my_data_includes_the_readers_questions_and_the_answers(client):
    import json

    from inbox.services import ticket_reply
    from newsletter.tokens import reader_tokens

    reader = SubscriberFactory(email="amina@example.org")
    client.post(ASK, ask_data())
    client.post(ASK, ask_data(email="someone.else@example.org"))
    ticket = Ticket.objects.get(email="amina@example.org")
    ticket_reply(ticket=ticket, author=StaffUserFactory(first_name="Wang"), body="Friday.")
    token = reader_tokens.make_token(reader, "preferences")
    response = client.post(f"/newsletter/preferences/{token}/", {"action": "export"})
    (exported,) = json.loads(response.content)["questions_and_contributions"]
    assert (exported["reference"], exported["message"]) == (ticket.reference, QUESTION)
    assert exported["ip"] == "127.0.0.1" and exported["organisation"] == "Lagos Port Authority"
    assert [(a["by"], a["answer"]) for a in exported["answers"]] == [("Wang", "Friday.")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (docx_bomb(inflated_mb=3, dense=True), "unpacks to more than 2 MB"),
        (docx_bomb(inflated_mb=5), "packed far more tightly than a document can be"),
        (docx_bomb(inflated_mb=5, nested=True), "packed far more tightly than a document can be"),
        (docx_bomb(entries=1200), "holds more than 1000 parts"),
    ],
    ids=["inflates-past-the-size-limit", "compression-ratio", "bomb-nested-inside", "entries"],
)
def test_it_refuses_a_docx_zip_bomb_with_a_clear_message(client, settings, content, message):
    settings.INBOX_DOCX_MAX_UNPACKED_MB = 2
    response = client.post(WRITE, write_data(attachment=upload("story.docx", content)))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Ticket.objects.exists() and mail.outbox == [] and _stored_files(settings) == []


def test_it_takes_an_ordinary_docx_of_many_parts(client):
    content = docx_bomb(entries=40)
    response = client.post(WRITE, write_data(attachment=upload("story.docx", content)))
    assert response.status_code == 200
    assert Ticket.objects.get().attachment_name == "story.docx"


def test_a_story_may_be_a_file_alone_or_text_alone_but_not_nothing(client, settings):
    file_only = client.post(WRITE, write_data(body="", attachment=upload("story.pdf", PDF)))
    assert file_only.status_code == 200
    assert Ticket.objects.get().attachment_name == "story.pdf"
    text_only = client.post(WRITE, write_data(email="other@example.kz"))
    assert text_only.status_code == 200 and Ticket.objects.count() == 2
    nothing = client.post(WRITE, write_data(email="third@example.kz", body=""))
    assert nothing.status_code == 400
    assert "Write your story in the box, or attach it as a file: either is enough." in (
        nothing.content.decode()
    )
    assert Ticket.objects.count() == 2


def test_a_file_the_page_cannot_keep_is_named_beside_the_file_field_and_in_the_summary(
    client, monkeypatch
):
    # A good file, but the form fails on something else (the consent box is not ticked),
    # and the server holds no more files just now (held_files.HOLD_MAX_FILES).
    monkeypatch.setattr("inbox.held_files.HOLD_MAX_FILES", 0)
    data = write_data(attachment=upload("harvest-report.pdf", PDF))
    del data["consent"]
    page = client.post(WRITE, data).content.decode()
    summary = page[
        page.index('class="error-summary"') : page.index(
            "</div>", page.index('class="error-summary"')
        )
    ]
    assert '<a href="#file-again">Choose your file “harvest-report.pdf” again.</a>' in summary
    notice = page.index('id="file-again"')
    assert page.index('id="field-link"') < notice < page.index('id="field-attachment"')
    assert not Ticket.objects.exists()
