from django.contrib import admin
from django.urls import include, path

from newsletter.views.health import healthz

admin.site.site_header = "Belt & Road Weekly"
admin.site.site_title = "Belt & Road Weekly admin"
admin.site.index_title = "Newsroom"

urlpatterns = [
    # Report pages live under the admin's URL and look, but in their own module.
    path("admin/newsletter/reports/", include("newsletter.admin.reports")),
    path("admin/", admin.site.urls),
    path("newsletter/", include("newsletter.urls")),
    path("newsletter/", include("inbox.urls")),
    # Tracking webhooks first: anymail's views hardened (newsletter/webhooks.py).
    path("anymail/", include("newsletter.webhooks")),
    path("captcha/", include("captcha.urls")),
    path("healthz", healthz, name="healthz"),
]
