"""The results report of each issue and the list-health report, in admin.

URLs (included in config/urls.py before the admin's own):
  /admin/newsletter/reports/issue/<id>/  name "newsletter_reports:issue"
  /admin/newsletter/reports/health/      name "newsletter_reports:health"
Staff who may view deliveries may see them.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from newsletter.admin.charts import Series, columns
from newsletter.models import Issue, Newsletter
from newsletter.selectors.metrics import (
    COMPLAINT_LIMIT,
    COMPLAINT_TARGET,
    complaint_advice,
    issue_report,
    leaving_reasons,
    list_health,
)

app_name = "newsletter_reports"


def _allowed(request: HttpRequest) -> None:
    # The reports are aggregates with no reader's address in them, so everyone in the
    # newsroom who may see issues (Editors, Publishers) may see how they did.
    if not request.user.has_perm("newsletter.view_issue"):
        raise PermissionDenied


def _percent(value: float) -> str:
    return f"{value * 100:.2f} %"


def issue_results(request: HttpRequest, issue_id: int) -> HttpResponse:
    _allowed(request)
    issue = get_object_or_404(Issue.objects.select_related("newsletter"), pk=issue_id)
    report = issue_report(issue=issue)
    chart = columns(
        _("First opens and clicks by day"),
        [date_format(day, "D j") for day, _o, _c in report.by_day],
        [
            Series(_("opened"), "c-open", [opened for _d, opened, _c in report.by_day]),
            Series(_("clicked"), "c-click", [clicked for _d, _o, clicked in report.by_day]),
        ],
    )
    funnel = [
        (_("Recipients"), report.recipients, "c-neutral"),
        (_("Accepted by the ESP"), report.accepted, "c-neutral"),
        (_("Delivered"), report.delivered, "c-gain"),
        (_("Opened"), report.opened, "c-open"),
        (_("Clicked"), report.clicked, "c-click"),
        (_("Bounced"), report.bounced, "c-bounce"),
        (_("Complained"), report.complained, "c-complaint"),
        (_("Unsubscribed after"), report.unsubscribed, "c-loss"),
    ]
    context = {
        **admin.site.each_context(request),
        "title": _("Results of No. %(number)s") % {"number": issue.number},
        "subtitle": issue.title,
        "opts": Issue._meta,
        "issue": issue,
        "report": report,
        "funnel": funnel,
        "chart": chart,
        "advice": complaint_advice(report.complaint_level),
    }
    return TemplateResponse(request, "admin/newsletter/reports/issue.html", context)


def health(request: HttpRequest) -> HttpResponse:
    _allowed(request)
    newsletters = list(Newsletter.objects.order_by("pk"))  # one query, for the picker too
    slug = request.GET.get("newsletter")
    if slug:
        newsletter = next((n for n in newsletters if n.slug == slug), None)
        if newsletter is None:
            raise Http404
    else:
        active = [n for n in newsletters if n.is_active]
        newsletter = (active or newsletters or [None])[0]
    if newsletter is None:
        raise PermissionDenied(_("No newsletter yet: create one first."))
    try:
        weeks = min(max(int(request.GET.get("weeks", 12)), 4), 52)
    except ValueError:
        weeks = 12
    report = list_health(newsletter=newsletter, weeks=weeks)
    leaving = leaving_reasons(newsletter=newsletter, weeks=weeks)
    labels = [date_format(week.start, "M j") for week in report.weeks]
    movement = columns(
        _("Readers gained and lost per week"),
        labels,
        [
            Series(_("new sign-ups"), "c-neutral", [w.new for w in report.weeks]),
            Series(_("confirmed"), "c-gain", [w.confirmed for w in report.weeks]),
        ],
        [
            Series(_("unsubscribed"), "c-loss", [w.unsubscribed for w in report.weeks]),
            Series(_("bounced"), "c-bounce", [w.bounced for w in report.weeks]),
            Series(_("complained"), "c-complaint", [w.complained for w in report.weeks]),
            Series(_("paused (sunset)"), "c-paused", [w.paused for w in report.weeks]),
        ],
    )
    complaints = columns(
        _("Complaint rate per week"),
        labels,
        [
            Series(
                _("complaint rate"),
                "c-complaint",
                [w.complaint_rate or 0.0 for w in report.weeks],
            )
        ],
        rules=[
            (COMPLAINT_TARGET, "r-target", _("0.1 % target")),
            (COMPLAINT_LIMIT, "r-limit", _("0.3 % limit")),
        ],
        fmt=_percent,
        height=180,
    )
    context = {
        **admin.site.each_context(request),
        "title": _("List health"),
        "subtitle": newsletter.name,
        "opts": Issue._meta,
        "newsletter": newsletter,
        "newsletters": newsletters,
        "weeks": weeks,
        "report": report,
        "movement": movement,
        "complaints": complaints,
        "leaving": leaving,
    }
    return TemplateResponse(request, "admin/newsletter/reports/health.html", context)


urlpatterns = [
    path("issue/<int:issue_id>/", admin.site.admin_view(issue_results), name="issue"),
    path("health/", admin.site.admin_view(health), name="health"),
]
