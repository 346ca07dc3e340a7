"""Tickets in admin: read the message, assign it, answer it (emailed and recorded), close it.

Everything the sender typed is shown escaped. The attachment is downloaded through a
view that checks the editor's permission; no URL serves the stored file directly.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.template.defaultfilters import filesizeformat, linebreaksbr
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from inbox.models import ANSWER_MAX_CHARS, Reply, ReplyTemplate, Ticket
from inbox.services import (
    AnsweredMeanwhile,
    ticket_handle,
    ticket_reply,
    tickets_delete,
    tickets_erase,
)


class TemplateSelect(forms.Select):
    """The reply templates, each option carrying its text for this ticket (inbox-reply.js)."""

    def __init__(self, *args, texts: dict[str, str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.texts = texts or {}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        text = self.texts.get(str(value))
        if text is not None:
            option["attrs"]["data-text"] = text
        return option


class TicketAdminForm(forms.ModelForm):
    """Status and assignee, and the reply box: what an editor writes is emailed on Save."""

    answer = forms.CharField(
        label=_("Answer by email"),
        required=False,
        max_length=ANSWER_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 10, "class": "vLargeTextField"}),
        help_text=_(
            "Sent to the sender from the newsletter's address when you save, and recorded on "
            "this ticket with your name. A new ticket becomes answered."
        ),
    )
    # How many answers the editor saw when the page was made: two editors answering the
    # same question at once would otherwise both send.
    replies_seen = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Ticket
        fields = ["status", "assignee"]

    reply_template = forms.ModelChoiceField(
        label=_("Start from a template"),
        queryset=ReplyTemplate.objects.all(),
        required=False,
        help_text=_(
            "Puts the template's text in the answer box to read and adjust before you save."
        ),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["replies_seen"].initial = self.instance.replies.count()
        templates = list(ReplyTemplate.objects.all())
        if templates and self.instance.pk:
            field = self.fields["reply_template"]
            field.widget = TemplateSelect(
                attrs={"data-replace": _("Replace the text in the answer box?")},
                choices=field.choices,
                texts={str(t.pk): t.text_for(self.instance) for t in templates},
            )
        else:
            # Nothing to choose from yet: the row stays, empty (the fieldsets name it).
            self.fields["reply_template"].widget = forms.HiddenInput()

    def clean(self) -> dict:
        data = super().clean()
        template = data.get("reply_template")
        if template is not None and not data.get("answer", "").strip():
            # Without JavaScript the choice fills the box here; nothing is sent unread.
            self.data = self.data.copy()
            self.data["answer"] = template.text_for(self.instance)
            self.data["reply_template"] = ""
            raise forms.ValidationError(
                _("The template is in the answer box: read it, adjust it, then save to send.")
            )
        seen = data.get("replies_seen")
        answering = bool(data.get("answer", "").strip())
        count = self.instance.replies.count()
        if answering and seen is not None and count != seen:
            # The page comes back showing the new answer; saving again then sends this one.
            self.data = self.data.copy()
            self.data["replies_seen"] = str(count)
            raise forms.ValidationError(
                _(
                    "Another answer was sent while you were writing yours. Read it below "
                    "(your text is still in the box), then save again to send yours too."
                )
            )
        return data


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    form = TicketAdminForm
    list_display = ["reference", "status", "summary", "name", "email", "assignee", "created_at"]
    list_display_links = ["reference", "summary"]
    list_filter = ["status", "kind", ("assignee", admin.RelatedOnlyFieldListFilter)]
    show_facets = admin.ShowFacets.ALWAYS
    search_fields = ["reference", "email", "name", "organisation", "body"]
    date_hierarchy = "created_at"
    list_select_related = ["assignee"]
    readonly_fields = [
        "reference",
        "kind",
        "created_at",
        "sender",
        "organisation",
        "country_shown",
        "body",
        "link_shown",
        "attachment_shown",
        "answered_at",
        "closed_at",
        "conversation",
        "consent_text",
        "subscribe_requested",
        "form",
        "ip",
        "user_agent",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "reference",
                    "kind",
                    "created_at",
                    "sender",
                    "organisation",
                    "country_shown",
                ]
            },
        ),
        (_("Message"), {"fields": ["body", "link_shown", "attachment_shown"]}),
        (_("Handling"), {"fields": ["status", "assignee", "answered_at", "closed_at"]}),
        (_("Answers"), {"fields": ["conversation", "reply_template", "answer", "replies_seen"]}),
        (
            _("Consent and origin"),
            {
                "classes": ["collapse"],
                "fields": ["consent_text", "subscribe_requested", "form", "ip", "user_agent"],
            },
        ),
    ]
    actions = ["assign_to_me", "mark_closed", "erase_senders"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tickets come from readers' forms

    @admin.display(description=_("message"))
    def summary(self, obj: Ticket) -> str:
        text = " ".join(obj.body.split())
        return text if len(text) <= 80 else text[:79] + "…"

    @admin.display(description=_("from"))
    def sender(self, obj: Ticket) -> str:
        return format_html("{} &lt;{}&gt;", obj.name, obj.email)

    @admin.display(description=_("country"))
    def country_shown(self, obj: Ticket) -> str:
        return obj.country_name or "—"

    @admin.display(description=_("link"))
    def link_shown(self, obj: Ticket) -> str:
        if not obj.link:
            return "—"
        # The form took only http(s) links; it opens apart from admin, without a referrer.
        return format_html(
            '<a href="{}" target="_blank" rel="noopener noreferrer nofollow">{}</a>',
            obj.link,
            obj.link,
        )

    @admin.display(description=_("attachment"))
    def attachment_shown(self, obj: Ticket) -> str:
        if not obj.attachment:
            return "—"
        url = reverse("admin:inbox_ticket_attachment", args=[obj.pk])
        return format_html(
            '<a href="{}" download>{}</a> ({}, {})',
            url,
            obj.attachment_name,
            obj.attachment_type.split(";")[0],
            filesizeformat(obj.attachment_size),
        )

    @admin.display(description=_("answers so far"))
    def conversation(self, obj: Ticket) -> str:
        replies = list(obj.replies.all())
        if not replies:
            return _("None yet.")
        return format_html_join(
            "",
            '<div class="inbox-reply"><p><strong>{}</strong> · {} · {}</p><div>{}</div></div>',
            (
                (
                    reply.author_name,
                    date_format(localtime(reply.created_at), "DATETIME_FORMAT"),
                    _state(reply),
                    linebreaksbr(reply.body, autoescape=True),
                )
                for reply in replies
            ),
        )

    def save_model(self, request: HttpRequest, obj: Ticket, form: TicketAdminForm, change: bool):
        data = form.cleaned_data
        ticket_handle(ticket=obj, status=data["status"], assignee=data["assignee"])
        answer = data.get("answer", "").strip()
        if not answer:
            return
        try:
            ticket_reply(
                ticket=obj, author=request.user, body=answer, replies_seen=data.get("replies_seen")
            )
        except AnsweredMeanwhile:
            self.message_user(
                request,
                _(
                    "Another answer was sent at the same moment; yours was not. Read it and try again."
                ),
                messages.ERROR,
            )
            return
        obj.refresh_from_db()
        self.message_user(
            request,
            _("Your answer to %(reference)s is on its way to %(email)s and recorded on the ticket.")
            % {"reference": obj.reference, "email": obj.email},
        )

    def delete_model(self, request: HttpRequest, obj: Ticket) -> None:
        tickets_delete(tickets=Ticket.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        tickets_delete(tickets=queryset)

    @admin.action(description=_("Assign to me"), permissions=["change"])
    def assign_to_me(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        for ticket in queryset:
            ticket_handle(ticket=ticket, status=ticket.status, assignee=request.user)
        self.message_user(request, _("Assigned to you."))

    @admin.action(description=_("Close"), permissions=["change"])
    def mark_closed(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        count = 0
        for ticket in queryset.exclude(status=Ticket.Status.CLOSED):
            ticket_handle(ticket=ticket, status=Ticket.Status.CLOSED, assignee=ticket.assignee)
            count += 1
        self.message_user(
            request, ngettext("Closed %(n)d ticket.", "Closed %(n)d tickets.", count) % {"n": count}
        )

    @admin.action(
        description=_("Erase everything from these senders (cannot be undone)"),
        permissions=["delete"],
    )
    def erase_senders(
        self, request: HttpRequest, queryset: QuerySet[Ticket]
    ) -> HttpResponse | None:
        emails = sorted(set(queryset.values_list("email", flat=True)))
        if request.POST.get("confirm") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": _("Erase everything from these senders?"),
                "emails": emails,
                "count": Ticket.objects.filter(email__in=emails).count(),
                "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            }
            return TemplateResponse(request, "admin/inbox/ticket/erase_confirm.html", context)
        count = sum(tickets_erase(email=email) for email in emails)
        self.message_user(
            request,
            ngettext("Erased %(n)d ticket.", "Erased %(n)d tickets.", count) % {"n": count},
        )
        return None

    def get_urls(self):
        extra = [
            path(
                "<int:pk>/attachment/",
                self.admin_site.admin_view(self.attachment_view),
                name="inbox_ticket_attachment",
            )
        ]
        return extra + super().get_urls()

    def attachment_view(self, request: HttpRequest, pk: int) -> FileResponse:
        """Send the attachment as a download, never shown inline in admin's origin."""
        ticket = Ticket.objects.filter(pk=pk).first()
        if ticket is None or not self.has_view_permission(request, ticket):
            raise Http404
        if not ticket.attachment or not default_storage.exists(ticket.attachment.name):
            raise Http404
        response = FileResponse(
            default_storage.open(ticket.attachment.name, "rb"),
            as_attachment=True,
            filename=ticket.attachment_name or "attachment",
            content_type=ticket.attachment_type or "application/octet-stream",
        )
        # Should a browser render it after all, it runs nothing and reaches nothing.
        response["Content-Security-Policy"] = "sandbox; default-src 'none'"
        response["Cache-Control"] = "private, no-store"
        return response

    class Media:
        css = {"all": ["inbox/admin-ticket.css"]}
        js = ["inbox/inbox-reply.js"]


def _state(reply: Reply) -> str:
    if reply.sent_at:
        return _("sent to %(to)s") % {"to": reply.to}
    if reply.last_error:
        return _("NOT SENT: %(error)s") % {"error": reply.last_error[:200]}
    return _("sending to %(to)s") % {"to": reply.to}


@admin.register(ReplyTemplate)
class ReplyTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "created_by", "updated_at"]
    search_fields = ["name", "body"]
    fields = ["name", "body"]

    def save_model(self, request: HttpRequest, obj: ReplyTemplate, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "body" and field is not None:
            field.help_text = _(
                "{name} becomes the sender's name and {reference} the ticket's reference."
            )
        return field
