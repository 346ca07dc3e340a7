"""Tickets: a reader's question ("Ask Us A Question") or contribution ("Write to Us").

Everything a reader typed is stored exactly as typed and escaped wherever it is shown.
An attachment lives under MEDIA_ROOT, which no URL serves: editors download it through
an admin view that checks their permission.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_countries import countries

from articles.models import default_language

# Texts as long as a reader may write them; the forms refuse anything longer.
QUESTION_MAX_CHARS = 5000
STORY_MAX_CHARS = 20000
ANSWER_MAX_CHARS = 20000


class Ticket(models.Model):
    class Kind(models.TextChoices):
        QUESTION = "question", _("Question")
        CONTRIBUTION = "contribution", _("Contribution")

    class Status(models.TextChoices):
        NEW = "new", _("New")
        ANSWERED = "answered", _("Answered")
        CLOSED = "closed", _("Closed")

    reference = models.CharField(_("reference"), max_length=12, unique=True, editable=False)
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices, editable=False)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.NEW, db_index=True
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assignee"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="inbox_tickets",
        limit_choices_to={"is_staff": True, "is_active": True},
    )
    name = models.CharField(_("name"), max_length=100)
    email = models.EmailField(_("email"), max_length=254, db_index=True)
    organisation = models.CharField(_("organisation"), max_length=150, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True)
    body = models.TextField(_("message"))
    link = models.URLField(_("link"), max_length=500, blank=True)
    attachment = models.FileField(_("attachment"), upload_to="inbox/%Y/%m/", blank=True)
    attachment_name = models.CharField(_("attachment's file name"), max_length=150, blank=True)
    attachment_type = models.CharField(_("attachment's type"), max_length=100, blank=True)
    attachment_size = models.PositiveIntegerField(_("attachment's size (bytes)"), default=0)
    consent_text = models.TextField(
        _("consent given"), help_text=_("The exact wording the sender agreed to.")
    )
    subscribe_requested = models.BooleanField(
        _("asked to subscribe"),
        default=False,
        help_text=_("The sender ticked the newsletter box; a confirmation email went out."),
    )
    form = models.CharField(_("form"), max_length=50, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    # Issue 14: the acknowledgement and answers go out in the language the sender wrote in.
    language = models.CharField(_("language"), max_length=10, default=default_language)
    created_at = models.DateTimeField(_("received"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    answered_at = models.DateTimeField(_("first answered"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"])]
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")

    def __str__(self) -> str:
        return f"{self.reference} · {self.get_kind_display()}"

    @property
    def country_name(self) -> str:
        return str(countries.name(self.country)) if self.country else ""


class Reply(models.Model):
    """An editor's answer, as sent to the sender: who wrote it, when, and what it said."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="replies")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("author"),
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )
    # Kept as written, so the record stays readable after the account is gone.
    author_name = models.CharField(_("written by"), max_length=150)
    body = models.TextField(_("answer"))
    to = models.EmailField(_("sent to"), max_length=254)
    created_at = models.DateTimeField(_("written"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    message_id = models.CharField(_("Message-ID"), max_length=255, blank=True)
    last_error = models.TextField(_("last error"), blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("answer")
        verbose_name_plural = _("answers")

    def __str__(self) -> str:
        return f"{self.ticket.reference} · {self.author_name} · {self.created_at:%Y-%m-%d %H:%M}"


class ReplyTemplate(models.Model):
    """An answer editors give often, to start from on a ticket and then adjust.

    `{name}` and `{reference}` in the text become the sender's name and the ticket's
    reference when an editor picks it.
    """

    name = models.CharField(_("name"), max_length=100, unique=True)
    body = models.TextField(_("text"), max_length=5000)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("written by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("reply template")
        verbose_name_plural = _("reply templates")

    def __str__(self) -> str:
        return self.name

    def text_for(self, ticket: Ticket) -> str:
        """Return the text with the sender's name and the ticket's reference put in."""
        return self.body.replace("{name}", ticket.name).replace("{reference}", ticket.reference)
