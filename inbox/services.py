"""Writes for reader questions and contributions: submit, answer, handle, erase.

Emails go out from a Celery task after the transaction commits, as the reader emails
do: a slow mail server never holds the reader's page or the editor's Save.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.crypto import get_random_string

from articles.languages import reader_language
from config.celery import enqueue
from inbox import files
from inbox.models import Reply, Ticket
from newsletter.emails import build_message, render_email, site_domain
from newsletter.links import absolute
from newsletter.models import ConsentText
from newsletter.selectors.newsletters import newsletter_default
from newsletter.services.editors import editors_notify
from newsletter.services.subscribers import Profile, subscriber_signup
from newsletter.suppression import normalise_email

logger = logging.getLogger(__name__)

# The emails, each templates/emails/<name>.{subject.txt,txt,html}.
ACKNOWLEDGEMENT = "inbox_acknowledgement"
EDITORS_NOTICE = "inbox_new_ticket"
ANSWER = "inbox_answer"
INBOX_EMAILS = (ACKNOWLEDGEMENT, EDITORS_NOTICE, ANSWER)

# Easy to read aloud over the phone: no 0/O, 1/I.
_REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_PREFIX = {Ticket.Kind.QUESTION: "Q", Ticket.Kind.CONTRIBUTION: "C"}


@dataclass(frozen=True)
class Message:
    """What a reader sent, as typed (the form has checked it)."""

    name: str
    email: str
    body: str
    consent_text: str
    organisation: str = ""
    country: str = ""
    link: str = ""


def _queue_email(name: str, object_id: int) -> None:
    enqueue("inbox.tasks.send_inbox_email", name, object_id)


def _reference(kind: str) -> str:
    return f"{_PREFIX[kind]}-{get_random_string(6, _REFERENCE_ALPHABET)}"


def _delete_files_on_commit(names: list[str]) -> None:
    def delete() -> None:
        for name in names:
            try:
                default_storage.delete(name)
            except OSError as exc:
                logger.warning("could not delete attachment %s: %s", name, exc)

    if names:
        transaction.on_commit(delete)


def ticket_submit(
    *,
    kind: str,
    message: Message,
    attachment: UploadedFile | None = None,
    subscribe: ConsentText | None = None,
    ip: str | None,
    user_agent: str,
    form: str,
) -> Ticket:
    """Store a reader's question or contribution as a new ticket; acknowledge it and tell the editors.

    With `subscribe` (the newsletter's consent text the reader ticked) the reader is also
    signed up through the normal double opt-in: a confirmation email, nothing more.
    """
    ticket = Ticket(
        kind=kind,
        name=message.name,
        email=normalise_email(message.email),
        organisation=message.organisation,
        country=message.country,
        body=message.body,
        link=message.link if kind == Ticket.Kind.CONTRIBUTION else "",
        consent_text=message.consent_text,
        subscribe_requested=subscribe is not None,
        form=form[:50],
        ip=ip,
        user_agent=user_agent[:300],
        # The acknowledgement and answers go out in the language of the page (issue 14).
        language=reader_language(translation.get_language()),
    )
    if attachment is not None and kind == Ticket.Kind.CONTRIBUTION:
        kind_of_file = files.sniff(attachment)
        if kind_of_file is None:  # the form refuses these; a caller that did not check, too
            raise ValueError("attachment of a type we do not take")
        ticket.attachment_name = files.display_name(attachment.name or "", kind_of_file)
        ticket.attachment_type = kind_of_file.content_type
        ticket.attachment_size = attachment.size or 0
        ticket.attachment.save(files.storage_name(kind_of_file), attachment, save=False)
    try:
        with transaction.atomic():
            for attempt in range(5):
                ticket.reference = _reference(kind)
                try:
                    with transaction.atomic():
                        ticket.save()
                    break
                except IntegrityError:
                    if attempt == 4:
                        raise
            _queue_email(ACKNOWLEDGEMENT, ticket.pk)
            _queue_email(EDITORS_NOTICE, ticket.pk)
            if subscribe is not None:
                subscriber_signup(
                    newsletter=subscribe.newsletter,
                    email=ticket.email,
                    profile=Profile(
                        name=message.name,
                        organisation=message.organisation,
                        country=message.country,
                    ),
                    consent_text=subscribe,
                    ip=ip,
                    user_agent=user_agent,
                    form=form,
                )
    except BaseException:
        if ticket.attachment:
            default_storage.delete(ticket.attachment.name)
        raise
    return ticket


def ticket_handle(*, ticket: Ticket, status: str, assignee: AbstractBaseUser | None) -> list[str]:
    """Set a ticket's status and assignee; return the names of the fields that changed."""
    now = timezone.now()
    with transaction.atomic():
        current = Ticket.objects.select_for_update().get(pk=ticket.pk)
        changed = []
        if current.status != status:
            changed.append("status")
            current.status = status
            current.closed_at = now if status == Ticket.Status.CLOSED else None
        if current.assignee_id != (assignee.pk if assignee else None):
            changed.append("assignee")
            current.assignee = assignee
        if changed:
            current.save(update_fields=["status", "closed_at", "assignee", "updated_at"])
    ticket.status, ticket.closed_at, ticket.assignee = (
        current.status,
        current.closed_at,
        current.assignee,
    )
    return changed


class AnsweredMeanwhile(Exception):
    """Another editor answered the ticket after this one opened it."""


def ticket_reply(
    *, ticket: Ticket, author: AbstractBaseUser, body: str, replies_seen: int | None = None
) -> Reply:
    """Email `body` to the ticket's sender as the answer and record who sent what, when.

    A new ticket becomes answered (a closed one stays closed), and one nobody has taken
    is assigned to its author. `replies_seen`, the number of answers the editor saw,
    stops two editors from answering the same question without knowing it.
    """
    body = body.replace("\r\n", "\n").strip()
    if not body:
        raise ValueError("an answer needs some text")
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        if replies_seen is not None and ticket.replies.count() != replies_seen:
            raise AnsweredMeanwhile(ticket.reference)
        name = getattr(author, "get_full_name", lambda: "")() or author.get_username()
        reply = Reply.objects.create(
            ticket=ticket, author=author, author_name=name[:150], body=body, to=ticket.email
        )
        now = timezone.now()
        if ticket.status == Ticket.Status.NEW:
            ticket.status = Ticket.Status.ANSWERED
        ticket.answered_at = ticket.answered_at or now
        if ticket.assignee_id is None:
            ticket.assignee = author
        ticket.save(update_fields=["status", "answered_at", "assignee", "updated_at"])
        _queue_email(ANSWER, reply.pk)
    return reply


def tickets_delete(*, tickets: QuerySet[Ticket]) -> int:
    """Delete tickets with their answers and attachment files; return how many tickets."""
    with transaction.atomic():
        ids = list(tickets.select_for_update().values_list("pk", flat=True))
        rows = Ticket.objects.filter(pk__in=ids)
        _delete_files_on_commit(
            [name for name in rows.values_list("attachment", flat=True) if name]
        )
        rows.delete()
    return len(ids)


def tickets_erase(*, email: str) -> int:
    """Delete every question and contribution sent from `email` (erasure); return how many."""
    return tickets_delete(tickets=Ticket.objects.filter(email__iexact=normalise_email(email)))


# --- The emails ---------------------------------------------------------------------------


def _ticket_context(ticket: Ticket) -> dict:
    return {
        "ticket": ticket,
        "reference": ticket.reference,
        "question": ticket.kind == Ticket.Kind.QUESTION,
        "received": ticket.created_at,
    }


# How much of the sender's message an answer quotes; a long story is cut with "…".
QUOTE_MAX_CHARS = 1500


def quoted(text: str, *, limit: int = QUOTE_MAX_CHARS) -> str:
    """Return `text` cut to `limit` characters (at a word), as it is quoted in an answer."""
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip() + " …"


def inbox_email_send(*, name: str, object_id: int) -> bool:
    """Render and send inbox email `name` about ticket (or answer) `object_id`; False if gone."""
    if name not in INBOX_EMAILS:
        raise ValueError(f"unknown inbox email {name!r}")
    newsletter = newsletter_default()
    if name == ANSWER:
        reply = Reply.objects.select_related("ticket", "author").filter(pk=object_id).first()
        if reply is None or reply.sent_at is not None:
            return False  # erased meanwhile, or already sent by an earlier try
        context = {
            **_ticket_context(reply.ticket),
            "reply": reply,
            # The answer quotes what the sender asked, as every mail program does.
            "quoted": quoted(reply.ticket.body),
            "newsletter": newsletter,
            # Signed by the editor's full name when the account has one, never a login name.
            "signature": reply.author.get_full_name() if reply.author else "",
        }
        message = build_message(
            render_email(ANSWER, context, language=reader_language(reply.ticket.language)),
            sender=newsletter,
            to=reply.to,
        )
        message.tags = ["inbox", name]
        message.send()
        Reply.objects.filter(pk=reply.pk).update(
            sent_at=timezone.now(), message_id=message.extra_headers["Message-ID"], last_error=""
        )
        return True
    ticket = Ticket.objects.filter(pk=object_id).first()
    if ticket is None:
        return False
    context = {**_ticket_context(ticket), "newsletter": newsletter}
    if name == EDITORS_NOTICE:
        context["admin_url"] = absolute(reverse("admin:inbox_ticket_change", args=[ticket.pk]))
        context["site_domain"] = site_domain()
        return editors_notify(name=name, context=context) > 0
    # The acknowledgement: nothing the sender typed beyond the reference we made.
    message = build_message(
        render_email(ACKNOWLEDGEMENT, context, language=reader_language(ticket.language)),
        sender=newsletter,
        to=ticket.email,
    )
    message.tags = ["inbox", name]
    message.send()
    return True


def reply_failed(*, reply_id: int, error: str) -> None:
    """Record why an answer could not be sent, for the editors to see on the ticket."""
    Reply.objects.filter(pk=reply_id, sent_at__isnull=True).update(last_error=error[:2000])
