"""Admin for readers: subscribers, consent and suppressions."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from newsletter.models import ConsentRecord, ConsentText, Subscriber, Suppression


@admin.register(ConsentText)
class ConsentTextAdmin(admin.ModelAdmin):
    list_display = ["newsletter", "version", "created_at"]
    list_filter = ["newsletter"]
    readonly_fields = ["created_at"]

    def has_change_permission(self, request, obj=None) -> bool:
        # A consent text is what readers agreed to; a change is a new version.
        return obj is None and super().has_change_permission(request, obj)


class ConsentRecordInline(admin.TabularInline):
    model = ConsentRecord
    extra = 0
    can_delete = False
    fields = ["at", "action", "method", "form", "consent_text", "ip", "user_agent", "note"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    list_display = [
        "email",
        "name",
        "organisation",
        "country",
        "status",
        "newsletter",
        "created_at",
        "confirmed_at",
    ]
    list_filter = ["status", "newsletter", "country", "categories"]
    search_fields = ["email", "name", "organisation"]
    date_hierarchy = "created_at"
    filter_horizontal = ["categories"]
    readonly_fields = [
        "created_at",
        "updated_at",
        "confirmed_at",
        "unsubscribed_at",
        "soft_bounce_count",
    ]
    inlines = [ConsentRecordInline]


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ["email_hash", "reason", "newsletter", "created_at"]
    list_filter = ["reason", "newsletter"]
    readonly_fields = ["email_hash", "reason", "newsletter", "created_at"]

    @admin.display(description=_("hash"))
    def short_hash(self, obj: Suppression) -> str:
        return obj.email_hash[:12]
