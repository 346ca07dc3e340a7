"""Admin for editors: newsletters and issues, with the issue's own pages.

An issue's page links to: preview (HTML and plain text, per reader variant), send a
test, schedule, send now (after a confirmation that states the recipient count),
hold, cancel and the sending progress. Editors curate and send tests; scheduling,
sending and cancelling need the "send_issue" permission. Every action is written to
the admin history (LogEntry) of the issue.
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.clickjacking import xframe_options_sameorigin

from articles.languages import language_name, other_languages_field
from newsletter.admin.issue_forms import (
    CompileForm,
    IssueItemForm,
    ScheduleForm,
    SendTestForm,
    VariantForm,
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
    Progress,
    issue_audience,
    issue_digest_size,
    issue_failures,
    issue_preview,
    issue_progress,
)
from newsletter.selectors.newsletters import newsletter_default
from newsletter.sending.ratelimit import paused_for
from newsletter.services.issues import (
    ITEM_DISPLAY_ORDER,
    IssueActionError,
    issue_cancel,
    issue_compile,
    issue_hold,
    issue_items_renumber,
    issue_schedule,
    issue_send_test,
    issue_start_sending,
)
from newsletter.services.resend import issue_retry_failed
from newsletter.timezones import newsroom_timezone_forget
from newsletter.weeks import IsoWeek, current_week

SEND_PERMISSION = "newsletter.send_issue"
# What an issue in each status still allows; the rest of the page is read-only.
EDITABLE = (Issue.Status.DRAFT, Issue.Status.SCHEDULED)
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


@admin.register(Newsletter)
class NewsletterAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "from_email",
        "send_weekday",
        "send_time",
        "timezone",
        "approval_policy",
        "is_active",
    ]
    list_filter = ["is_active", "approval_policy"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["categories"]

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        newsroom_timezone_forget()  # pages show the new time zone at once

    fieldsets = [
        (None, {"fields": ["name", "slug", "description", "is_active"]}),
        (_("Sender"), {"fields": ["from_name", "from_email", "reply_to", "postal_address"]}),
        (
            _("Schedule and approval"),
            {
                "fields": [
                    "send_weekday",
                    "send_time",
                    "timezone",
                    "approval_policy",
                    "review_hours",
                ],
                "description": _(
                    "Each week's issue is drafted at this weekday and time, in this time zone, "
                    "from the seven days before it; the Editors group is emailed a link to it."
                ),
            },
        ),
        (_("Sections"), {"fields": ["categories", "section_cap"]}),
        (_("Languages"), {"fields": ["missing_translation"]}),
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
class IssueAdmin(admin.ModelAdmin):
    list_display = [
        "number",
        "title",
        "week",
        "status_badge",
        "when",
        "article_count",
        "recipients_count",
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

    def results_url(self, issue: Issue) -> str | None:
        """Return the URL of the issue's results report, linked from its page once sent.

        The report (delivered, bounced, complained, opened, clicked, unsubscribed
        after) lives with the tracking webhooks in newsletter/admin/report_pages.py.
        """
        if issue.status not in (Issue.Status.SENDING, Issue.Status.SENT):
            return None
        return reverse("newsletter_reports:issue", args=[issue.pk])

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
            "results_url": self.results_url(issue),
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

    # --- custom pages ----------------------------------------------------------------

    def get_urls(self):
        def wrap(view):
            return self.admin_site.admin_view(view)

        name = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("compile/", wrap(self.compile_view), name=f"{name}_compile"),
            path("<int:pk>/preview/", wrap(self.preview_view), name=f"{name}_preview"),
            path(
                "<int:pk>/preview/html/",
                wrap(self.preview_html_view),
                name=f"{name}_preview_html",
            ),
            path("<int:pk>/send-test/", wrap(self.send_test_view), name=f"{name}_send_test"),
            path("<int:pk>/recompile/", wrap(self.recompile_view), name=f"{name}_recompile"),
            path("<int:pk>/schedule/", wrap(self.schedule_view), name=f"{name}_schedule"),
            path("<int:pk>/send/", wrap(self.send_view), name=f"{name}_send"),
            path("<int:pk>/hold/", wrap(self.hold_view), name=f"{name}_hold"),
            path("<int:pk>/cancel/", wrap(self.cancel_view), name=f"{name}_cancel"),
            path(
                "<int:pk>/retry-failed/",
                wrap(self.retry_failed_view),
                name=f"{name}_retry_failed",
            ),
            path("<int:pk>/progress/", wrap(self.progress_view), name=f"{name}_progress"),
            path(
                "<int:pk>/progress.json",
                wrap(self.progress_json_view),
                name=f"{name}_progress_json",
            ),
            *super().get_urls(),
        ]

    def _issue(self, request: HttpRequest, pk: int, *, need: str) -> Issue:
        """Return the issue if the user may `need` ("view", "change" or "send") it."""
        issue = Issue.objects.select_related("newsletter").filter(pk=pk).first()
        if issue is None:
            raise Http404(_t("No issue with that id."))
        allowed = {
            "view": self.has_view_permission(request, issue),
            "change": super().has_change_permission(request, issue),
            "send": request.user.has_perm(SEND_PERMISSION),
        }[need]
        if not allowed:
            raise PermissionDenied
        return issue

    def _page(
        self, request: HttpRequest, issue: Issue | None, template: str, title: str, **context
    ) -> TemplateResponse:
        return TemplateResponse(
            request,
            f"admin/newsletter/issue/{template}",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "original": issue,
                "issue": issue,
                "title": title,
                "week_label": week_label(issue) if issue else "",
                "local_tz": issue.newsletter.timezone if issue else "",
                **context,
            },
        )

    def _record(self, request: HttpRequest, issue: Issue, message: str) -> None:
        """Write what was done to the issue's admin history and tell the user."""
        self.log_change(request, issue, message)
        self.message_user(request, message, messages.SUCCESS)

    def _back(self, issue: Issue) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:newsletter_issue_change", args=[issue.pk]))

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        issue = self._issue(request, pk, need="view")
        digest = digest_build(issue)
        form = VariantForm(request.GET or None, digest=digest)
        categories = form.category_ids() if form.is_valid() else []
        language = form.language_code() if form.is_valid() else settings.LANGUAGE_CODE
        preview = issue_preview(
            issue=issue, categories=categories, language=language, digest=digest
        )
        query = "&".join(
            [
                *(f"categories={pk}" for pk in categories),
                *([f"language={language}"] if language != settings.LANGUAGE_CODE else []),
            ]
        )
        return self._page(
            request,
            issue,
            "preview.html",
            _t("Preview of No. %(number)s") % {"number": issue.number},
            form=form,
            preview=preview,
            sections=preview.digest.sections_for(preview.variant),
            preheader=preheader(preview.digest, preview.variant),
            can_test=super().has_change_permission(request, issue) and issue.status in EDITABLE,
            html_url=reverse("admin:newsletter_issue_preview_html", args=[issue.pk])
            + (f"?{query}" if query else ""),
            from_address=preview.from_address,
        )

    @xframe_options_sameorigin  # shown in an iframe of the preview page, never elsewhere
    def preview_html_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        issue = self._issue(request, pk, need="view")
        form = VariantForm(request.GET or None, digest=digest_build(issue))
        if request.GET and not form.is_valid():
            return HttpResponse(str(form.errors), status=400, content_type="text/plain")
        categories = form.category_ids() if request.GET else []
        language = form.language_code() if request.GET else settings.LANGUAGE_CODE
        preview = issue_preview(issue=issue, categories=categories, language=language)
        return HttpResponse(preview.email.html)

    def send_test_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        issue = self._issue(request, pk, need="change")
        digest = digest_build(issue)
        form = SendTestForm(
            request.POST if request.method == "POST" else None,
            digest=digest,
            initial={"to": request.user.email},
        )
        if request.method == "POST" and form.is_valid():
            to = form.cleaned_data["to"]
            try:
                sent = issue_send_test(
                    issue=issue,
                    to=to,
                    categories=form.category_ids(),
                    language=form.language_code(),
                )
            except IssueActionError as exc:
                form.add_error("categories", str(exc))
            else:
                message = _t("Sent a [TEST] copy of No. %(number)s to %(to)s.") % {
                    "number": issue.number,
                    "to": ", ".join(to),
                }
                self._record(request, issue, message)
                if sent < len(to):
                    self.message_user(
                        request, _t("Only %(n)s went out.") % {"n": sent}, messages.WARNING
                    )
                return self._back(issue)
        return self._page(
            request,
            issue,
            "send_test.html",
            _t("Send a test of No. %(number)s") % {"number": issue.number},
            form=form,
        )

    def recompile_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        issue = self._issue(request, pk, need="change")
        if request.method != "POST":
            return self._back(issue)
        result = issue_compile(newsletter=issue.newsletter, week=IsoWeek.parse(issue.week))
        if result.issue is not None and result.issue.pk == issue.pk and result.added:
            self.log_change(request, issue, result.message)
        level = messages.SUCCESS if result.issue == issue else messages.WARNING
        self.message_user(request, result.message, level)
        return self._back(issue)

    def schedule_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        issue = self._issue(request, pk, need="send")
        tz = issue.newsletter.tz
        with timezone.override(tz):
            if request.method == "POST":
                form = ScheduleForm(request.POST)
                if form.is_valid():
                    try:
                        issue_schedule(issue=issue, at=form.cleaned_data["at"])
                    except IssueActionError as exc:
                        form.add_error("at" if "past" in str(exc) else None, str(exc))
                    else:
                        local = timezone.localtime(issue.scheduled_at, tz)
                        message = _t("Scheduled No. %(number)s for %(at)s (%(tz)s).") % {
                            "number": issue.number,
                            "at": f"{local:%Y-%m-%d %H:%M}",
                            "tz": issue.newsletter.timezone,
                        }
                        self._record(request, issue, message)
                        return self._back(issue)
            else:
                form = ScheduleForm(initial={"at": _default_send_time(issue)})
            return self._page(
                request,
                issue,
                "schedule.html",
                _t("Schedule No. %(number)s") % {"number": issue.number},
                form=form,
                audience=issue_audience(issue=issue),
                now_local=timezone.localtime(timezone.now(), tz),
            )

    def send_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        issue = self._issue(request, pk, need="send")
        if request.method == "POST":
            # Counted the way the confirmation page counted them, so the two agree:
            # readers who get it, and apart from them those none of whose sections is in it.
            audience = issue_audience(issue=issue)
            try:
                issue_start_sending(issue=issue)
            except IssueActionError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return self._back(issue)
            message = ngettext(
                "Started sending No. %(number)s to %(n)s reader.",
                "Started sending No. %(number)s to %(n)s readers.",
                audience.receiving,
            ) % {"number": issue.number, "n": audience.receiving}
            if audience.skipped:
                message += " " + ngettext(
                    "%(n)s more active reader is skipped: none of their sections is in this issue.",
                    "%(n)s more active readers are skipped: none of their sections is in this issue.",
                    audience.skipped,
                ) % {"n": audience.skipped}
            self._record(request, issue, message)
            return HttpResponseRedirect(reverse("admin:newsletter_issue_progress", args=[issue.pk]))
        if issue.status not in EDITABLE:
            self.message_user(
                request,
                _t("No. %(number)s is %(status)s: it cannot be sent.")
                % {"number": issue.number, "status": issue.get_status_display().lower()},
                messages.ERROR,
            )
            return self._back(issue)
        digest = digest_build(issue)
        return self._page(
            request,
            issue,
            "send_confirm.html",
            _t("Send No. %(number)s now?") % {"number": issue.number},
            audience=issue_audience(issue=issue, digest=digest),
            article_count=digest.article_count,
        )

    def hold_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        issue = self._issue(request, pk, need="change")
        if request.method == "POST":
            try:
                issue_hold(issue=issue)
            except IssueActionError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                message = _t(
                    "Held No. %(number)s: back to draft, it is not sent until scheduled again."
                ) % {"number": issue.number}
                self._record(request, issue, message)
        return self._back(issue)

    def cancel_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        issue = self._issue(request, pk, need="send")
        if request.method == "POST":
            try:
                issue_cancel(issue=issue)
            except IssueActionError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                message = _t("Cancelled No. %(number)s: it will not be sent.") % {
                    "number": issue.number
                }
                self._record(request, issue, message)
            return self._back(issue)
        return self._page(
            request,
            issue,
            "cancel_confirm.html",
            _t("Cancel No. %(number)s?") % {"number": issue.number},
        )

    def retry_failed_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        issue = self._issue(request, pk, need="send")
        if request.method == "POST":
            try:
                queued = issue_retry_failed(issue=issue)
            except IssueActionError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return self._back(issue)
            message = _t("Sending No. %(number)s again to %(n)s readers whose delivery failed.") % {
                "number": issue.number,
                "n": queued,
            }
            self._record(request, issue, message)
            return HttpResponseRedirect(reverse("admin:newsletter_issue_progress", args=[issue.pk]))
        return self._page(
            request,
            issue,
            "retry_failed_confirm.html",
            _t("Retry the failed deliveries of No. %(number)s?") % {"number": issue.number},
            failures=issue_failures(issue=issue),
        )

    def progress_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        issue = self._issue(request, pk, need="view")
        return self._page(
            request,
            issue,
            "progress.html",
            (
                _t("Sending No. %(number)s")
                if issue.status == Issue.Status.SENDING
                else _t("No. %(number)s: %(status)s")
            )
            % {"number": issue.number, "status": issue.get_status_display().lower()},
            progress=progress_payload(issue, issue_progress(issue=issue)),
            results_url=self.results_url(issue),
            web_url=issue_web_url(issue),
        )

    def progress_json_view(self, request: HttpRequest, pk: int) -> JsonResponse:
        issue = self._issue(request, pk, need="view")
        return JsonResponse(progress_payload(issue, issue_progress(issue=issue)))

    def compile_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("newsletter.add_issue"):
            raise PermissionDenied
        newsletter = newsletter_default()
        form = CompileForm(
            request.POST if request.method == "POST" else None,
            initial={"week": str(current_week(newsletter, timezone.now()))},
        )
        if request.method == "POST" and form.is_valid():
            result = issue_compile(newsletter=newsletter, week=form.cleaned_data["week"])
            if result.issue is None:
                self.message_user(request, result.message, messages.WARNING)
                return HttpResponseRedirect(reverse("admin:newsletter_issue_changelist"))
            if result.created:
                self.log_addition(request, result.issue, result.message)
            elif result.added:
                self.log_change(request, result.issue, result.message)
            self.message_user(request, result.message, messages.SUCCESS)
            return self._back(result.issue)
        return self._page(
            request,
            None,
            "compile.html",
            _t("Compile an issue of %(name)s") % {"name": newsletter.name},
            form=form,
            newsletter=newsletter,
        )


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


def _default_send_time(issue: Issue) -> datetime:
    """Return the form's suggestion: the time already scheduled, else the next quarter
    hour at least half an hour ahead, in the newsletter's time zone."""
    if issue.scheduled_at:
        return timezone.localtime(issue.scheduled_at, issue.newsletter.tz)
    soon = timezone.localtime(timezone.now(), issue.newsletter.tz) + timedelta(minutes=45)
    return soon.replace(minute=soon.minute - soon.minute % 15, second=0, microsecond=0)


def duration_display(seconds: float | None) -> str:
    """Return a duration as a person reads it: "40 s", "12 min", "2 h 05 min"."""
    if seconds is None:
        return "—"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def progress_payload(issue: Issue, progress: Progress) -> dict:
    """Return what the progress page's script shows, as JSON."""
    rate = progress.rate_per_minute
    eta = progress.eta
    return {
        "status": issue.status,
        "status_display": issue.get_status_display(),
        "queued": progress.queued,
        "in_flight": progress.in_flight,
        "sent": progress.sent,
        "failed": progress.failed,
        "skipped": progress.skipped,
        "done": progress.done,
        "total": progress.total,
        "percent": progress.percent,
        "rate_per_minute": round(rate, 1) if rate else None,
        "rate_display": f"{rate:,.0f} / min" if rate else "—",
        "eta_seconds": int(eta.total_seconds()) if eta else None,
        "stalled": progress.stalled,
        "eta_display": _t("done")
        if progress.finished
        else _t("stalled: nothing sent for a minute")
        if progress.stalled
        else duration_display(eta.total_seconds() if eta else None),
        "elapsed_display": duration_display(
            progress.elapsed.total_seconds() if progress.elapsed else None
        ),
        "finished": progress.finished,
        "paused_display": _paused_display(issue),
    }


def _paused_display(issue: Issue) -> str:
    """Say so while every worker waits out the ESP's rate limit (Retry-After)."""
    if issue.status != Issue.Status.SENDING:
        return ""
    seconds = paused_for()
    if seconds < 1:
        return ""
    return _t(
        "The email service asked us to slow down: sending resumes in %(wait)s. "
        "No reader is failed for it."
    ) % {"wait": duration_display(seconds)}
