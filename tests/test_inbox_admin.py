"""Tickets in admin: editors read, assign, answer (emailed and recorded), close and download."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.core.files.base import ContentFile

from inbox.models import Reply, Ticket
from inbox.services import Message, ticket_submit
from tests.factories import StaffUserFactory
from tests.inbox_steps import PDF
from tests.reader_steps import CommitClient, html_of

pytestmark = pytest.mark.django_db


def _ticket(**overrides) -> Ticket:
    fields = {
        "name": "Amina Yusuf",
        "email": "amina@example.org",
        "body": "When does the <b>next</b> issue on ports come out?",
        "consent_text": "I agree…",
        "organisation": "Lagos Port Authority",
        "country": "NG",
        **overrides,
    }
    kind = fields.pop("kind", Ticket.Kind.QUESTION)
    return ticket_submit(
        kind=kind, message=Message(**fields), ip="198.51.100.7", user_agent="Firefox", form="test"
    )


@pytest.fixture
def editor():
    return StaffUserFactory(
        username="desk", first_name="Wang", last_name="Fang", groups=["Editors"]
    )


@pytest.fixture
def editor_client(editor) -> CommitClient:
    client = CommitClient()
    client.force_login(editor)
    return client


def _change_url(ticket: Ticket) -> str:
    return f"/admin/inbox/ticket/{ticket.pk}/change/"


def _form(ticket: Ticket, **overrides) -> dict:
    data = {
        "status": ticket.status,
        "assignee": ticket.assignee_id or "",
        "answer": "",
        "replies_seen": ticket.replies.count(),
    }
    data.update(overrides)
    return data


def test_an_editor_sees_the_tickets_with_status_assignee_and_counts(editor_client):
    _ticket()
    _ticket(email="erlan@example.kz", name="Erlan", kind=Ticket.Kind.CONTRIBUTION)
    page = editor_client.get("/admin/inbox/ticket/").content.decode()
    assert "Reader questions and contributions" in page
    assert "Amina Yusuf" in page and "Erlan" in page
    assert "When does the &lt;b&gt;next&lt;/b&gt; issue" in page  # escaped
    assert "New (2)" in page  # counts beside the status filter
    assert editor_client.get("/admin/inbox/ticket/?status__exact=new").status_code == 200


def test_the_ticket_page_shows_the_message_escaped_and_the_reply_box(editor_client):
    ticket = _ticket(body="<script>alert(1)</script>\nSecond line")
    page = editor_client.get(_change_url(ticket)).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;<br>Second line" in page
    assert "<script>alert(1)" not in page
    assert "Amina Yusuf &lt;amina@example.org&gt;" in page
    assert "Nigeria" in page
    assert 'name="answer"' in page and 'name="status"' in page and 'name="assignee"' in page
    assert "None yet." in page


def test_an_answer_is_emailed_to_the_sender_and_recorded_with_who_and_when(editor, editor_client):
    ticket = _ticket()
    mail.outbox.clear()
    response = editor_client.post(
        _change_url(ticket),
        _form(ticket, answer="Dear Amina,\n\nThe ports issue comes out on Friday.\n<i>Thanks</i>"),
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert (ticket.status, ticket.assignee, ticket.answered_at is not None) == (
        "answered",
        editor,
        True,
    )
    reply = Reply.objects.get()
    assert (reply.author, reply.author_name, reply.to) == (editor, "Wang Fang", "amina@example.org")
    assert reply.body == "Dear Amina,\n\nThe ports issue comes out on Friday.\n<i>Thanks</i>"
    assert reply.sent_at is not None and reply.message_id.startswith("<")

    (answer,) = mail.outbox
    assert answer.to == ["amina@example.org"]
    assert answer.subject == f"Re: your question {ticket.reference}"
    assert answer.from_email == "Belt & Road Weekly <weekly@news.example.org>"
    assert answer.reply_to == ["silkroadweekly@news.example.org"]
    assert "The ports issue comes out on Friday." in answer.body
    assert "Wang Fang\nThe editors of Belt & Road Weekly" in answer.body
    assert "&lt;i&gt;Thanks&lt;/i&gt;" in html_of(answer)
    assert answer.extra_headers["Message-ID"] == reply.message_id
    # The answer quotes the question below the signature, escaped in the HTML part.
    assert "you wrote:\n> When does the <b>next</b> issue on ports come out?" in answer.body
    html = html_of(answer)
    assert re.search(r"<blockquote[^>]*>When does the &lt;b&gt;next&lt;/b&gt; issue", html)
    assert html.index("The ports issue comes out") < html.index("<blockquote")

    page = editor_client.get(_change_url(ticket)).content.decode()
    assert "Wang Fang" in page and "sent to amina@example.org" in page
    assert "&lt;i&gt;Thanks&lt;/i&gt;" in page


def test_answering_a_closed_ticket_keeps_it_closed(editor_client):
    ticket = _ticket()
    editor_client.post(_change_url(ticket), _form(ticket, status="closed", answer="Done."))
    ticket.refresh_from_db()
    assert ticket.status == "closed" and ticket.closed_at is not None
    assert Reply.objects.count() == 1


def test_status_and_assignee_change_without_an_email(editor, editor_client):
    ticket = _ticket()
    colleague = StaffUserFactory(username="colleague", groups=["Editors"])
    mail.outbox.clear()
    editor_client.post(_change_url(ticket), _form(ticket, status="closed", assignee=colleague.pk))
    ticket.refresh_from_db()
    assert (ticket.status, ticket.assignee) == ("closed", colleague)
    assert ticket.closed_at is not None
    editor_client.post(_change_url(ticket), _form(ticket, status="new"))
    ticket.refresh_from_db()
    assert (ticket.status, ticket.closed_at) == ("new", None)
    assert mail.outbox == [] and not Reply.objects.exists()


def test_only_active_staff_can_be_assigned(editor_client):
    ticket = _ticket()
    reader_account = StaffUserFactory(username="notstaff", is_staff=False)
    response = editor_client.post(_change_url(ticket), _form(ticket, assignee=reader_account.pk))
    assert response.status_code == 200
    assert b"Select a valid choice" in response.content


def test_an_answer_sent_meanwhile_by_another_editor_stops_a_second_one(editor_client):
    ticket = _ticket()
    seen = _form(ticket, answer="My answer.")
    other = StaffUserFactory(username="other", groups=["Editors"])
    from inbox.services import ticket_reply

    ticket_reply(ticket=ticket, author=other, body="Their answer.")
    mail.outbox.clear()
    response = editor_client.post(_change_url(ticket), seen)
    page = response.content.decode()
    assert response.status_code == 200
    assert "Another answer was sent while you were writing yours" in page
    assert "Their answer." in page and "My answer.</textarea>" in page
    assert Reply.objects.count() == 1 and mail.outbox == []
    # Having read it, the editor saves again and theirs goes too.
    replies_seen = re.search(r'name="replies_seen" value="(\d+)"', page).group(1)
    editor_client.post(_change_url(ticket), {**seen, "replies_seen": replies_seen})
    assert Reply.objects.count() == 2 and len(mail.outbox) == 1


def test_an_answer_the_mail_server_refused_is_shown_as_not_sent(editor_client, monkeypatch):
    ticket = _ticket()

    def refuse(self, fail_silently=False):
        raise OSError("connection refused")

    monkeypatch.setattr("django.core.mail.EmailMultiAlternatives.send", refuse)
    editor_client.post(_change_url(ticket), _form(ticket, answer="Hello."))
    reply = Reply.objects.get()
    assert reply.sent_at is None and reply.last_error == "connection refused"
    page = editor_client.get(_change_url(ticket)).content.decode()
    assert "NOT SENT: connection refused" in page


def test_the_attachment_downloads_through_admin_only_as_an_attachment(editor_client, client):
    ticket = _ticket(kind=Ticket.Kind.CONTRIBUTION)
    ticket.attachment.save("abc.pdf", ContentFile(PDF))
    Ticket.objects.filter(pk=ticket.pk).update(
        attachment_name="Story.pdf", attachment_type="application/pdf", attachment_size=len(PDF)
    )
    url = f"/admin/inbox/ticket/{ticket.pk}/attachment/"
    page = editor_client.get(_change_url(ticket)).content.decode()
    assert f'<a href="{url}" download>Story.pdf</a> (application/pdf, 77' in page

    response = editor_client.get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="Story.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert b"".join(response.streaming_content) == PDF

    anonymous = client.get(url)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    outsider = CommitClient()
    outsider.force_login(StaffUserFactory(username="intern"))  # staff, no permission
    assert outsider.get(url).status_code == 404


def test_editors_cannot_add_or_delete_tickets(editor_client):
    ticket = _ticket()
    assert editor_client.get("/admin/inbox/ticket/add/").status_code == 403
    assert editor_client.get(f"/admin/inbox/ticket/{ticket.pk}/delete/").status_code == 403


def test_an_admin_erases_everything_from_a_sender_after_confirming(settings):
    from pathlib import Path

    admin_client = CommitClient()
    admin_client.force_login(StaffUserFactory(username="root", is_superuser=True))
    first = _ticket()
    second = _ticket(kind=Ticket.Kind.CONTRIBUTION)
    second.attachment.save("abc.pdf", ContentFile(PDF))
    kept = _ticket(email="someone@example.org")
    action = {"action": "erase_senders", "_selected_action": [first.pk]}
    confirm = admin_client.post("/admin/inbox/ticket/", action)
    assert b"This deletes 2 tickets sent from the addresses below" in confirm.content
    assert Ticket.objects.count() == 3
    admin_client.post("/admin/inbox/ticket/", {**action, "confirm": "yes"})
    assert list(Ticket.objects.all()) == [kept]
    assert not any(p.is_file() for p in Path(settings.MEDIA_ROOT).rglob("*"))


def test_the_assign_to_me_and_close_actions(editor, editor_client):
    tickets = [_ticket(), _ticket(email="b@example.org")]
    ids = [t.pk for t in tickets]
    editor_client.post("/admin/inbox/ticket/", {"action": "assign_to_me", "_selected_action": ids})
    assert set(Ticket.objects.values_list("assignee", flat=True)) == {editor.pk}
    editor_client.post("/admin/inbox/ticket/", {"action": "mark_closed", "_selected_action": ids})
    assert set(Ticket.objects.values_list("status", flat=True)) == {"closed"}


def test_a_long_story_is_quoted_in_part(editor_client):
    ticket = _ticket(body="word " * 2000, kind=Ticket.Kind.CONTRIBUTION)
    mail.outbox.clear()
    editor_client.post(_change_url(ticket), _form(ticket, answer="Thank you, we will run it."))
    (answer,) = mail.outbox
    quote = [line for line in answer.body.splitlines() if line.startswith("> ")]
    assert quote[-1].endswith("word …") and len(quote[0]) < 1510


def test_editors_save_reply_templates_and_start_an_answer_from_one(editor, editor_client):
    response = editor_client.post(
        "/admin/inbox/replytemplate/add/",
        {"name": "Thanks for the story", "body": "Dear {name},\n\nThank you for {reference}."},
    )
    assert response.status_code == 302
    from inbox.models import ReplyTemplate

    template = ReplyTemplate.objects.get()
    assert template.created_by == editor
    ticket = _ticket()
    page = editor_client.get(_change_url(ticket)).content.decode()
    option = re.search(
        rf'<option value="{template.pk}" data-text="([^"]*)">Thanks for the story</option>', page
    )
    assert option and option.group(1) == f"Dear Amina Yusuf,\n\nThank you for {ticket.reference}."
    assert "inbox/inbox-reply.js" in page
    # Without JavaScript: saving with a template and an empty box puts the text in the box
    # and sends nothing.
    mail.outbox.clear()
    page = editor_client.post(_change_url(ticket), _form(ticket, reply_template=template.pk))
    body = page.content.decode()
    assert page.status_code == 200 and "The template is in the answer box" in body
    assert f"Dear Amina Yusuf,\n\nThank you for {ticket.reference}.</textarea>" in body
    assert mail.outbox == [] and not Reply.objects.exists()
    # Saved from there (adjusted or not), it is sent like any answer.
    editor_client.post(
        _change_url(ticket),
        _form(ticket, answer=f"Dear Amina Yusuf,\n\nThank you for {ticket.reference}."),
    )
    assert Reply.objects.get().body.startswith("Dear Amina Yusuf,")
    assert len(mail.outbox) == 1
