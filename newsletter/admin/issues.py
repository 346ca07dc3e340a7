"""Admin for editors: the issue list and the issue's change page (curation, texts, panel).

The issue's own pages (preview, test, schedule, send, hold, cancel, retry, progress,
compile) are in issue_pages.py; the newsletter's admin is in newsletters.py.
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import datetime

from django.conf import settings
from django.contrib import admin
from django.db.models import Count, F, Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from articles.languages import language_name, other_languages_field
from newsletter.admin.issue_forms import (
    IssueItemForm,
)
from newsletter.admin.issue_pages import (
    EDITABLE,
    SEND_PERMISSION,
    IssuePages,
    progress_payload,
    results_url,
)
from newsletter.digest import (
    EditionText,
    curation_read,
    digest_build,
    headline,
    preheader,
    week_label,
)
from newsletter.links import issue_web_url
from newsletter.models import Issue, IssueItem, IssueText, Newsletter
from newsletter.selectors.issues import (
    issue_audience,
    issue_digest_size,
    issue_progress,
)
from newsletter.services.issues import (
    ITEM_DISPLAY_ORDER,
    issue_items_renumber,
)

SENDING_FIELDS = [
    "articles_from",
    "started",
    "finished",
    "recipients_count",
    "sent_count",
    "failed_count",
    "skipped_count",
    "created_at",
    "updated_at",
]


class EditableWhileDraft:
    """An inline of the issue page that can change only while the issue can."""

    def _editable(self, obj: Issue | None) -> bool:
        return obj is None or obj.status in EDITABLE

    def has_add_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_delete_permission(request, obj)


class IssueItemInline(EditableWhileDraft, admin.TabularInline):
    model = IssueItem
    form = IssueItemForm
    extra = 0
    fields = [
        "position",
        "section",
        "article",
        "published",
        "pinned",
        "removed",
        "abstract_override",
    ]
    readonly_fields = ["published"]
    autocomplete_fields = ["article"]
    # The order the digest shows: sections by category position, pinned first, then position.
    ordering = list(ITEM_DISPLAY_ORDER)
    classes = ["issue-items"]

    def get_queryset(self, request):
        return (
            super().get_queryset(request).select_related("article", "section", "issue__newsletter")
        )

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "abstract_override" and field is not None:
            field.widget.attrs.update(rows=3, cols=28)
        if db_field.name in ("section", "article") and field is not None:
            # Keep the rows narrow: sections are chosen, not made, from here.
            field.widget.can_add_related = False
            if db_field.name == "section":
                field.widget.can_change_related = field.widget.can_view_related = False
        if db_field.name == "position" and field is not None:
            field.widget.attrs.update(style="width: 4em")
        return field

    @admin.display(description=_("published"))
    def published(self, obj: IssueItem) -> str:
        if not obj.pk:
            return "—"
        tz = obj.issue.newsletter.tz
        return timezone.localtime(obj.article.published_at, tz).strftime("%a %d %b %H:%M")


class IssueTextInline(EditableWhileDraft, admin.StackedInline):
    """Issue 14: the headline, preheader and editor's note of each other language's edition.

    The issue's own fields are the default language's; an edition left blank shows no
    note (never the default language's words to readers who chose another).
    """

    model = IssueText
    fields = ["language", "headline", "preheader", "editor_note"]
    classes = ["issue-texts"]
    verbose_name = _("edition text")
    verbose_name_plural = _("Other languages: headline, preheader and editor's note")

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "language":
            return other_languages_field(label=db_field.verbose_name)
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "editor_note" and field is not None:
            field.widget.attrs.update(rows=4)
        return field

    def get_extra(self, request, obj=None, **kwargs) -> int:
        others = len(settings.LANGUAGES) - 1
        have = obj.texts.count() if obj is not None else 0
        return max(0, others - have)

    def get_max_num(self, request, obj=None, **kwargs) -> int:
        return len(settings.LANGUAGES) - 1


@admin.register(Issue)
class IssueAdmin(IssuePages, admin.ModelAdmin):
    list_display = [
        "number",
        "title",
        "week",
        "status_badge",
        "when",
        "article_count",
        "recipients",
        "sent_count",
        "failed_count",
        "skipped_count",
    ]
    list_display_links = ["number", "title"]
    list_filter = ["status", "newsletter"]
    search_fields = ["title", "week"]
    fieldsets = [
        (
            None,
            {"fields": ["title", "newsletter", "number", "week", "status", "scheduled_for"]},
        ),
        (
            _("Headline and preheader"),
            {
                "fields": ["headline", "preheader", "section_cap"],
                "description": _(
                    "What inboxes show: the subject line, and the line after it. Leave them "
                    "empty for the defaults shown in grey."
                ),
            },
        ),
        (
            _("Editor's note"),
            {
                "fields": ["editor_note"],
                "description": _(
                    "Shown above the sections. Markdown: **bold**, _italic_, [a link](https://…), "
                    "lists. Scripts and styles are removed."
                ),
            },
        ),
        (
            _("Links"),
            {
                "fields": ["utm_source", "utm_medium", "utm_campaign"],
                "description": _(
                    "Added to every article link of this issue (the web archive uses "
                    "utm_medium=web). Clear all three for untagged links."
                ),
            },
        ),
        (
            _("Sending"),
            {
                "fields": SENDING_FIELDS,
                "classes": ["collapse"],
            },
        ),
    ]
    readonly_fields = ["newsletter", "number", "week", "status", "scheduled_for", *SENDING_FIELDS]
    inlines = [IssueItemInline, IssueTextInline]
    save_on_top = True

    # --- list ------------------------------------------------------------------------

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("newsletter")
            .annotate(_articles=Count("items", filter=Q(items__removed=False)))
        )

    @admin.display(description=_("articles"), ordering="_articles")
    def article_count(self, obj: Issue) -> int:
        return obj._articles

    @admin.display(description=_("recipients"), ordering=F("recipients_count") - F("skipped_count"))
    def recipients(self, obj: Issue) -> int:
        # Issue 15: readers it goes to, as the send confirmation and progress count them.
        # The snapshot (recipients_count) also holds the readers skipped at send time:
        # none of their sections in it, or gone before their batch.
        return max(obj.recipients_count - obj.skipped_count, 0)

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: Issue) -> str:
        return format_html(
            '<span class="issue-status issue-status-{}">{}</span>',
            obj.status,
            obj.get_status_display(),
        )

    @admin.display(description=_("scheduled / sent"))
    def when(self, obj: Issue) -> str:
        return local_time(obj, obj.sent_at or obj.send_started_at or obj.scheduled_at)

    @admin.display(description=_("scheduled for"))
    def scheduled_for(self, obj: Issue) -> str:
        return local_time(obj, obj.scheduled_at)

    @admin.display(description=_("articles published"))
    def articles_from(self, obj: Issue) -> str:
        return f"{local_time(obj, obj.window_start)} to {local_time(obj, obj.window_end)}"

    @admin.display(description=_("sending started"))
    def started(self, obj: Issue) -> str:
        return local_time(obj, obj.send_started_at)

    @admin.display(description=_("sending finished"))
    def finished(self, obj: Issue) -> str:
        return local_time(obj, obj.sent_at)

    # --- permissions -----------------------------------------------------------------

    def has_add_permission(self, request) -> bool:
        return False  # issues are compiled from the week's articles: see "Compile"

    def has_change_permission(self, request, obj=None) -> bool:
        # Once sending starts the issue is the record of what readers got: view only.
        if obj is not None and obj.status not in EDITABLE:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Only drafts nobody sent; a sent issue is history (and its ledger refers to it).
        if obj is not None and obj.status != Issue.Status.DRAFT:
            return False
        return super().has_delete_permission(request, obj)

    def view_on_site(self, obj: Issue) -> str | None:
        if obj.status in (Issue.Status.SENDING, Issue.Status.SENT):
            return reverse("newsletter:archive-issue", args=[obj.number])
        return None

    # --- the issue page --------------------------------------------------------------

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None and "headline" in form.base_fields:
            # The defaults, in grey, are what goes out if the editors write nothing.
            digest = digest_build(obj)
            # Issue 14: the edition's own words are blanked too (EditionText()).
            blank = dataclasses.replace(digest, issue=_blank(obj), text=EditionText())
            form.base_fields["headline"].widget.attrs.update(
                placeholder=headline(blank),
                style="width: 40em; max-width: 100%",
            )
            form.base_fields["preheader"].widget.attrs.update(
                placeholder=preheader(blank, digest.section_keys),
                style="width: 40em; max-width: 100%",
            )
            form.base_fields["section_cap"].widget.attrs.update(
                placeholder=str(obj.newsletter.section_cap)
            )
        return form

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        # Typed positions and arrow moves become 10, 20, 30… in the order now shown.
        issue_items_renumber(issue=form.instance)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        issue = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if issue is not None:
            extra.update(self._panel_context(request, issue))
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def _panel_context(self, request: HttpRequest, issue: Issue) -> dict:
        can_send = request.user.has_perm(SEND_PERMISSION)
        can_change = super().has_change_permission(request, issue)
        status = Issue.Status
        context = {
            "issue": issue,
            "week_label": week_label(issue),
            "local_tz": issue.newsletter.timezone,
            "can_send": can_send,
            "can_change": can_change,
            "can_preview": issue.status != status.CANCELLED,
            "can_test": can_change and issue.status in EDITABLE,
            "can_recompile": can_change and issue.status == status.DRAFT,
            "can_schedule": can_send and issue.status in EDITABLE,
            "can_send_now": can_send and issue.status in EDITABLE,
            "can_hold": can_change and issue.status == status.SCHEDULED,
            "can_cancel": can_send and issue.status in EDITABLE,
            "approval_auto": issue.newsletter.approval_policy == Newsletter.Approval.AUTO,
            "results_url": results_url(issue),
            # Publishers may send the failed rows again once the sending is over.
            "can_retry_failed": can_send and issue.status == status.SENT and issue.failed_count > 0,
        }
        # Issue 14: how much of the curation each language edition carries.
        context["coverage"] = [
            {
                "code": code,
                "name": language_name(code),
                "covered": covered,
                "total": total,
                "missing": total - covered,
            }
            for code, (covered, total) in curation_read(issue).coverage().items()
        ]
        if issue.status in EDITABLE:
            digest = digest_build(issue)
            context["audience"] = issue_audience(issue=issue, digest=digest)
            context["size"] = issue_digest_size(issue=issue, digest=digest)
        if issue.status in (status.SENDING, status.SENT):
            context["progress"] = progress_payload(issue, issue_progress(issue=issue))
            context["web_url"] = issue_web_url(issue)
        return context


def _blank(issue: Issue) -> Issue:
    """Return a copy of `issue` without the editors' headline and preheader (the defaults)."""
    blank = copy.copy(issue)
    blank.headline = blank.preheader = ""
    return blank


def local_time(issue: Issue, moment: datetime | None) -> str:
    """Return `moment` in the newsletter's time zone, which is the one editors plan in."""
    if moment is None:
        return "—"
    local = timezone.localtime(moment, issue.newsletter.tz)
    return f"{local:%a %Y-%m-%d %H:%M} ({issue.newsletter.timezone})"
