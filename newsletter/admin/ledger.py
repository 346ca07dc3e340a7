"""Admin for the ledger: deliveries, ESP tracking events and sunset requests (read-only).

Their change lists link to the list-health report (newsletter/admin/report_pages.py).
"""

from anymail.signals import EventType
from django.contrib import admin
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from newsletter.admin.scale import WHOLE_ADDRESS, ScaledAdmin, choices_filter
from newsletter.models import Delivery, Repermission, TrackingEvent

WITH_REPORTS = "admin/newsletter/reports/change_list.html"


def _webhook_esps() -> list[tuple[str, str]]:
    """Return (stored name, label) of each ESP whose tracking webhook we serve."""
    from newsletter.webhooks import urlpatterns

    names = {getattr(p.callback, "view_class", None) for p in urlpatterns}
    esps = sorted({view.esp_name for view in names if view is not None})
    return [(esp.lower(), esp) for esp in esps]


class EspFilter(admin.SimpleListFilter):
    """The ESPs we take webhooks from, instead of SELECT DISTINCT over every event."""

    title = _("ESP")
    parameter_name = "esp"

    def lookups(self, request, model_admin):
        return _webhook_esps()

    def queryset(self, request, queryset):
        return queryset.filter(esp=self.value()) if self.value() else queryset


EVENT_TYPES = [
    (value, value)
    for name, value in vars(EventType).items()
    if not name.startswith("_") and isinstance(value, str)
]


class ReadOnlyAdmin(ScaledAdmin):
    change_list_template = WITH_REPORTS

    def has_add_permission(self, request) -> bool:
        return False  # rows come from sending, ESPs and the sunset task, never by hand

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "issue",
        "subscriber",
        "status",
        "attempts",
        "sent_at",
        "esp_message_id",
        "open_count",
        "click_count",
        "results",
    ]
    list_filter = ["status", "issue"]
    search_fields = ["subscriber__email", "esp_message_id"]
    search_help_text = _("A reader's address (or part of it), or an ESP message id.")
    list_select_related = ["issue__newsletter", "subscriber"]
    raw_id_fields = ["issue", "subscriber"]
    ordering = ["-id"]

    def get_search_results(self, request, queryset, search_term: str):
        # An ESP message id ("<...@mg.example.com>") is looked up whole, through its index.
        term = search_term.strip()
        if term.startswith("<") and term.endswith(">"):
            return queryset.filter(esp_message_id=term), False
        if WHOLE_ADDRESS.fullmatch(term):
            address = queryset.alias(address=Lower("subscriber__email"))
            return address.filter(address=term.lower()), False
        queryset = queryset.filter(subscriber__email__icontains=term) if term else queryset
        return queryset, False

    @admin.display(description=_("issue results"))
    def results(self, obj: Delivery) -> str:
        url = reverse("newsletter_reports:issue", args=[obj.issue_id])
        return format_html('<a href="{}">{}</a>', url, _("results"))


@admin.register(TrackingEvent)
class TrackingEventAdmin(ReadOnlyAdmin):
    list_display = [
        "received_at",
        "esp",
        "event_type",
        "bounce_kind",
        "outcome",
        "message_id",
        "delivery",
        "processed_at",
    ]
    list_filter = [
        EspFilter,
        choices_filter("event_type", _("event"), EVENT_TYPES),
        "bounce_kind",
        "outcome",
        ("received_at", admin.DateFieldListFilter),
    ]
    search_fields = ["=message_id", "=esp_event_id"]
    search_help_text = _("An ESP message id or event id, whole.")
    raw_id_fields = ["delivery"]
    # The newest first by id: the primary key's index, where received_at has none alone.
    ordering = ["-id"]
    # Delivery.__str__ names its issue, and the issue its newsletter.
    list_select_related = ["delivery__issue__newsletter"]


@admin.register(Repermission)
class RepermissionAdmin(ReadOnlyAdmin):
    list_display = ["subscriber", "created_at", "sent_at", "outcome", "decided_at"]
    list_filter = ["outcome"]
    search_fields = ["subscriber__email"]
    raw_id_fields = ["subscriber"]
