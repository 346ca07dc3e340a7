from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic.base import RedirectView

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
    path("anymail/", include("anymail.urls")),
    path("captcha/", include("captcha.urls")),
    path("healthz", healthz, name="healthz"),
    # Browsers ask for /favicon.ico on pages that name no icon (admin, files, errors).
    path("favicon.ico", RedirectView.as_view(url=static("newsletter/favicon.ico"), permanent=True)),
]
