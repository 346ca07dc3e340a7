"""Admin for the ledger: deliveries, ESP tracking events and sunset requests (read-only).

Their change lists link to the list-health report (newsletter/admin/reports.py).
"""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from newsletter.models import Delivery, Repermission, TrackingEvent

WITH_REPORTS = "admin/newsletter/reports/change_list.html"


class ReadOnlyAdmin(admin.ModelAdmin):
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
    list_select_related = ["issue__newsletter", "subscriber"]
    raw_id_fields = ["issue", "subscriber"]

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
    list_filter = ["esp", "event_type", "bounce_kind", "outcome"]
    search_fields = ["message_id", "esp_event_id"]
    raw_id_fields = ["delivery"]
    date_hierarchy = "received_at"


@admin.register(Repermission)
class RepermissionAdmin(ReadOnlyAdmin):
    list_display = ["subscriber", "created_at", "sent_at", "outcome", "decided_at"]
    list_filter = ["outcome"]
    search_fields = ["subscriber__email"]
    raw_id_fields = ["subscriber"]
