"""Admin for the ledger: deliveries and ESP tracking events (read-only)."""

from django.contrib import admin

from newsletter.models import Delivery, TrackingEvent


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "issue",
        "subscriber",
        "status",
        "attempts",
        "sent_at",
        "esp_message_id",
        "open_count",
        "click_count",
    ]
    list_filter = ["status", "issue"]
    search_fields = ["subscriber__email", "esp_message_id"]
    list_select_related = ["issue__newsletter", "subscriber"]
    raw_id_fields = ["issue", "subscriber"]
    readonly_fields = [f.name for f in Delivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # rows come only from sending: the ledger is not edited by hand


@admin.register(TrackingEvent)
class TrackingEventAdmin(admin.ModelAdmin):
    list_display = ["received_at", "esp", "event_type", "message_id", "delivery"]
    list_filter = ["esp", "event_type"]
    search_fields = ["message_id", "esp_event_id"]
    raw_id_fields = ["delivery"]
    readonly_fields = [f.name for f in TrackingEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
