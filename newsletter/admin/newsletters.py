"""Admin of the newsletter itself: sender, schedule and approval, sections, languages."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from newsletter.models import Newsletter
from newsletter.timezones import newsroom_timezone_forget


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
