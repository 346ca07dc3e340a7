"""Admin for background jobs (CSV import and export of readers): list, progress page, download."""

from __future__ import annotations

from django.contrib import admin
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from newsletter.models import BackgroundJob, Subscriber
from newsletter.services.jobs import job_file, job_progress, rows_file


def may_see_readers(request: HttpRequest) -> bool:
    """Imports and exports hold readers' personal data: the readers' view permission guards them."""
    opts = Subscriber._meta
    return request.user.has_perm(f"{opts.app_label}.view_{opts.model_name}")


@admin.register(BackgroundJob)
class BackgroundJobAdmin(admin.ModelAdmin):
    list_display = ["__str__", "status", "input_name", "done", "failed", "created_by", "created_at", "progress_link"]
    list_filter = ["kind", "status"]
    readonly_fields = [f.name for f in BackgroundJob._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # started from the readers' list: Import CSV, Export

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return may_see_readers(request)

    @admin.display(description=_("progress"))
    def progress_link(self, obj: BackgroundJob) -> str:
        url = reverse("admin:newsletter_backgroundjob_progress", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Progress and report"))

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:job_id>/progress/", view(self.progress_view), name="newsletter_backgroundjob_progress"),
            path("<int:job_id>/progress.json", view(self.progress_json), name="newsletter_backgroundjob_status"),
            path("<int:job_id>/download/", view(self.download_view), name="newsletter_backgroundjob_download"),
            path(
                "<int:job_id>/download/rows/",
                view(self.rows_download_view),
                name="newsletter_backgroundjob_rows_download",
            ),
            *super().get_urls(),
        ]

    def _job(self, request: HttpRequest, job_id: int) -> BackgroundJob:
        if not may_see_readers(request):
            raise Http404
        job = BackgroundJob.objects.filter(pk=job_id).first()
        if job is None:
            raise Http404
        return job

    def progress_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        job = self._job(request, job_id)
        running = job.status in (BackgroundJob.Status.QUEUED, BackgroundJob.Status.RUNNING)
        context = {
            **self.admin_site.each_context(request),
            "title": str(job),
            "job": job,
            "progress": job_progress(job=job),
            "running": running,
            "has_file": job_file(job) is not None,
            "has_rows_file": rows_file(job) is not None,
            "opts": Subscriber._meta,
            "status_url": reverse("admin:newsletter_backgroundjob_status", args=[job.pk]),
        }
        return TemplateResponse(request, "admin/newsletter/job_progress.html", context)

    def progress_json(self, request: HttpRequest, job_id: int) -> JsonResponse:
        job = self._job(request, job_id)
        return JsonResponse(job_progress(job=job).as_dict())

    def download_view(self, request: HttpRequest, job_id: int) -> FileResponse:
        job = self._job(request, job_id)
        path = job_file(job)
        if path is None or job.status != BackgroundJob.Status.DONE:
            raise Http404
        stamp = timezone.localtime(job.finished_at).strftime("%Y%m%d-%H%M")
        name = f"readers-{stamp}.csv" if job.kind == BackgroundJob.Kind.EXPORT else f"import-{job.pk}-failed-rows.csv"
        return _csv_download(path, name)

    def rows_download_view(self, request: HttpRequest, job_id: int) -> FileResponse:
        """What every row of an import became (issue 15): created, unchanged, skipped or failed, and why."""
        job = self._job(request, job_id)
        path = rows_file(job)
        if path is None or job.status != BackgroundJob.Status.DONE:
            raise Http404
        return _csv_download(path, f"import-{job.pk}-rows.csv")


def _csv_download(path, name: str) -> FileResponse:
    response = FileResponse(open(path, "rb"), as_attachment=True, filename=name, content_type="text/csv; charset=utf-8")  # noqa: SIM115
    response["X-Content-Type-Options"] = "nosniff"
    return response
