"""Admin for readers: subscribers (actions, CSV import and export), consent and suppressions."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django_countries import countries

from newsletter.admin.scale import WHOLE_ADDRESS, ScaledAdmin, choices_filter
from newsletter.forms import SubscriberImportForm
from newsletter.models import ConsentRecord, ConsentText, Subscriber, Suppression
from newsletter.services.jobs import (
    EXPORT_FILTERS,
    export_queryset,
    job_export_start,
    job_import_start,
)
from newsletter.services.subscribers import (
    consent_text_publish,
    subscriber_confirmation_resend,
)
from newsletter.services.withdrawals import subscriber_unsubscribe
from newsletter.suppression import is_suppressed, normalise_email
from privacy.services import subscriber_erase


@admin.register(ConsentText)
class ConsentTextAdmin(admin.ModelAdmin):
    list_display = ["newsletter", "version", "language", "created_at"]
    list_filter = ["newsletter", "language"]
    fields = ["newsletter", "language", "text", "privacy_url", "version", "created_at"]
    readonly_fields = ["version", "created_at"]

    def has_change_permission(self, request, obj=None) -> bool:
        # A consent text is what readers agreed to; a change is a new version.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # consent records point at it

    def save_model(self, request, obj: ConsentText, form, change: bool) -> None:
        published = consent_text_publish(
            newsletter=obj.newsletter,
            text=obj.text,
            privacy_url=obj.privacy_url,
            language=obj.language,
        )
        obj.pk, obj.version, obj.created_at = published.pk, published.version, published.created_at


class ConsentRecordInline(admin.TabularInline):
    model = ConsentRecord
    extra = 0
    can_delete = False
    verbose_name_plural = _("consent history")
    fields = [
        "at",
        "action",
        "method",
        "form",
        "consent_version",
        "ip",
        "user_agent",
        "note",
    ]
    readonly_fields = fields
    ordering = ["at", "id"]

    @admin.display(description=_("consent text"))
    def consent_version(self, obj: ConsentRecord) -> str:
        return f"v{obj.consent_text.version}" if obj.consent_text_id else "—"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("consent_text")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class SubscriberAdminForm(forms.ModelForm):
    class Meta:
        model = Subscriber
        fields = [
            "newsletter",
            "email",
            "name",
            "organisation",
            "country",
            "language",
            "status",
            "categories",
            "source",
            "paused_until",
        ]

    def clean_email(self) -> str:
        email = normalise_email(self.cleaned_data["email"])
        newsletter = self.cleaned_data.get("newsletter") or getattr(
            self.instance, "newsletter", None
        )
        changed = self.instance.pk is None or email != normalise_email(self.instance.email)
        if changed and newsletter and is_suppressed(newsletter=newsletter, email=email):
            raise forms.ValidationError(
                _(
                    "This address is suppressed (erased, bounced or complained) and must not "
                    "be mailed. Delete its suppression first if its owner asked to come back."
                )
            )
        return email


@admin.register(Subscriber)
class SubscriberAdmin(ScaledAdmin):
    form = SubscriberAdminForm
    change_list_template = "admin/newsletter/subscriber/change_list.html"
    list_display = [
        "email",
        "name",
        "organisation",
        "country",
        "status",
        "paused_until",
        "newsletter",
        "source",
        "created_at",
        "confirmed_at",
    ]
    # Counts beside every filter choice while the list is small (ScaledAdmin drops them
    # at scale: the list-health report has the totals). No "source" filter: its SELECT
    # DISTINCT reads every reader, and neither may the country filter's.
    show_facets = admin.ShowFacets.ALWAYS
    list_filter = [
        "status",
        "newsletter",
        choices_filter("country", _("country"), list(countries)),
        "categories",
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["email", "name", "organisation"]
    search_help_text = _(
        "A whole address finds that reader; any other text, readers whose address, name "
        "or organisation contains it."
    )
    filter_horizontal = ["categories"]
    readonly_fields = [
        "created_at",
        "updated_at",
        "confirmed_at",
        "unsubscribed_at",
        "soft_bounce_count",
        "last_confirmation_sent_at",
    ]
    inlines = [ConsentRecordInline]
    actions = ["resend_confirmation", "unsubscribe", "erase", "export_csv"]

    def get_search_results(self, request, queryset, search_term: str):
        # A whole address goes straight to the unique index on lower(email); other text
        # is a substring search (icontains), which PostgreSQL answers from the trigram
        # indexes of migration 0006.
        term = search_term.strip()
        if WHOLE_ADDRESS.fullmatch(term):
            by_address = queryset.alias(address=Lower("email")).filter(address=term.lower())
            return by_address, False
        return super().get_search_results(request, queryset, search_term)

    def get_readonly_fields(self, request, obj: Subscriber | None = None):
        if obj is not None and obj.status == Subscriber.Status.ERASED:
            return [f.name for f in Subscriber._meta.fields] + ["categories"]
        return self.readonly_fields

    @admin.action(description=_("Resend the confirmation email"))
    def resend_confirmation(self, request: HttpRequest, queryset: QuerySet[Subscriber]) -> None:
        sent = sum(
            subscriber_confirmation_resend(subscriber=reader, force=True)
            for reader in queryset.exclude(status=Subscriber.Status.ACTIVE)
        )
        skipped = queryset.count() - sent
        self.message_user(
            request,
            ngettext("Sent %(sent)d confirmation.", "Sent %(sent)d confirmations.", sent)
            % {"sent": sent}
            + (
                " " + _("%(n)d skipped: already active, erased or suppressed.") % {"n": skipped}
                if skipped
                else ""
            ),
            messages.SUCCESS if sent else messages.WARNING,
        )

    @admin.action(description=_("Unsubscribe"))
    def unsubscribe(self, request: HttpRequest, queryset: QuerySet[Subscriber]) -> None:
        done = sum(
            subscriber_unsubscribe(subscriber=reader, method="admin")
            for reader in queryset.select_related("newsletter")
        )
        self.message_user(
            request,
            ngettext("Unsubscribed %(n)d reader.", "Unsubscribed %(n)d readers.", done)
            % {"n": done},
        )

    @admin.action(description=_("Erase personal data (cannot be undone)"))
    def erase(self, request: HttpRequest, queryset: QuerySet[Subscriber]) -> HttpResponse | None:
        readers = queryset.exclude(status=Subscriber.Status.ERASED)
        if request.POST.get("confirm") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": _("Erase these readers?"),
                "readers": readers[:50],
                "count": readers.count(),
                "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            }
            return TemplateResponse(
                request, "admin/newsletter/subscriber/erase_confirm.html", context
            )
        count = 0
        for reader in readers:
            subscriber_erase(subscriber=reader, method="admin")
            count += 1
        self.message_user(
            request,
            ngettext("Erased %(n)d reader.", "Erased %(n)d readers.", count) % {"n": count},
        )
        return None

    @admin.action(description=_("Export selected as CSV"))
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Subscriber]) -> HttpResponse:
        # A background job (newsletter/services/jobs.py): a million rows outlast a request.
        if request.POST.get("select_across") == "1":
            job = job_export_start(user=request.user, **_list_filters(request))
        else:
            job = job_export_start(user=request.user, ids=queryset.values_list("pk", flat=True))
        return HttpResponseRedirect(_progress_url(job))

    def get_urls(self):
        view = self.admin_site.admin_view
        extra = [
            path("import/", view(self.import_view), name="newsletter_subscriber_import"),
            path("export/", view(self.export_view), name="newsletter_subscriber_export"),
        ]
        return extra + super().get_urls()

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            return HttpResponse(status=403)
        if request.method == "POST":
            form = SubscriberImportForm(request.POST, request.FILES)
            if form.is_valid():
                data = form.cleaned_data
                job = job_import_start(
                    user=request.user,
                    upload=data["file"],
                    newsletter=data["newsletter"],
                    prior_consent=data["prior_consent"],
                    dry_run=data["dry_run"],
                )
                return HttpResponseRedirect(_progress_url(job))
        else:
            form = SubscriberImportForm()
        context = {
            **self.admin_site.each_context(request),
            "title": _("Import readers from CSV"),
            "form": form,
            "max_mb": settings.NEWSLETTER_IMPORT_MAX_MB,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/newsletter/subscriber/import.html", context)

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """Export every reader the list shows (its filters and search), after a button press."""
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        chosen = _list_filters(request)
        if request.method == "POST":
            return HttpResponseRedirect(_progress_url(job_export_start(user=request.user, **chosen)))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Export readers as CSV"),
            "count": export_queryset(chosen).count(),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/newsletter/subscriber/export.html", context)


def _list_filters(request: HttpRequest) -> dict:
    """Return the readers' list filters and search in `request`'s query string, for an export."""
    filters = {key: request.GET[key] for key in EXPORT_FILTERS if request.GET.get(key)}
    return {"filters": filters, "q": request.GET.get("q", "")}


def _progress_url(job) -> str:
    return reverse("admin:newsletter_backgroundjob_progress", args=[job.pk])


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ["short_hash", "reason", "newsletter", "created_at"]
    list_filter = ["reason", "newsletter"]
    readonly_fields = ["email_hash", "reason", "newsletter", "created_at"]
    show_facets = admin.ShowFacets.ALWAYS

    @admin.display(description=_("hash"))
    def short_hash(self, obj: Suppression) -> str:
        return obj.email_hash[:12]

    def has_add_permission(self, request) -> bool:
        return False  # rows come from erasure, bounces and complaints
