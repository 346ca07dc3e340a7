"""The issue's own pages in admin, beside its change page: one mixin of IssueAdmin.

Compile, preview (HTML and plain text, per reader variant), send a test, recompile,
schedule, send now (after a confirmation that states the recipient count), hold,
cancel, retry the failed deliveries, and the sending progress (a page and its JSON).
Editors curate and send tests; scheduling, sending and cancelling need the
"send_issue" permission. Every action is written to the admin history (LogEntry) of
the issue.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _t
from django.utils.translation import ngettext
from django.views.decorators.clickjacking import xframe_options_sameorigin

from newsletter.admin.issue_forms import (
    CompileForm,
    ScheduleForm,
    SendTestForm,
    VariantForm,
)
from newsletter.digest import (
    digest_build,
    preheader,
    week_label,
)
from newsletter.links import issue_web_url
from newsletter.models import Issue
from newsletter.selectors.issues import (
    Progress,
    issue_audience,
    issue_failures,
    issue_preview,
    issue_progress,
)
from newsletter.selectors.newsletters import newsletter_default
from newsletter.sending.ratelimit import paused_for
from newsletter.services.issues import (
    IssueActionError,
    issue_cancel,
    issue_compile,
    issue_hold,
    issue_schedule,
    issue_send_test,
    issue_start_sending,
)
from newsletter.services.resend import issue_retry_failed
from newsletter.weeks import IsoWeek, current_week

SEND_PERMISSION = "newsletter.send_issue"
# What an issue in each status still allows; the rest of the page is read-only.
EDITABLE = (Issue.Status.DRAFT, Issue.Status.SCHEDULED)


def results_url(issue: Issue) -> str | None:
    """Return the URL of the issue's results report, linked from its page once sent.

    The report (delivered, bounced, complained, opened, clicked, unsubscribed
    after) lives with the tracking webhooks in newsletter/admin/report_pages.py.
    """
    if issue.status not in (Issue.Status.SENDING, Issue.Status.SENT):
        return None
    return reverse("newsletter_reports:issue", args=[issue.pk])


class IssuePages:
    """The custom pages and their URLs; mixed into IssueAdmin before admin.ModelAdmin."""

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
            results_url=results_url(issue),
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
