from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic.base import RedirectView

from newsletter.views.health import healthz

admin.site.site_header = "Belt & Road Weekly"
admin.site.site_title = "Belt & Road Weekly admin"
admin.site.index_title = "Newsroom"


class FaviconView(RedirectView):
    """Send /favicon.ico to the hashed static file, looked up per request: at import
    time the manifest of collected files may not exist yet (manage.py check)."""

    permanent = True

    def get_redirect_url(self, *args, **kwargs) -> str:
        return static("newsletter/favicon.ico")


urlpatterns = [
    # Report pages live under the admin's URL and look, but in their own module.
    path("admin/newsletter/reports/", include("newsletter.admin.report_pages")),
    path("admin/", admin.site.urls),
    # Tracking webhooks first: anymail's views hardened (newsletter/webhooks.py).
    path("anymail/", include("newsletter.webhooks")),
    path("captcha/", include("captcha.urls")),
    path("healthz", healthz, name="healthz"),
    # Browsers ask for /favicon.ico on pages that name no icon (admin, files, errors).
    path("favicon.ico", FaviconView.as_view()),
]

# Reader pages in every language (issue 14): /newsletter/… in the default language,
# /zh-hans/newsletter/… (and /<code>/newsletter/… for any language in settings) in
# the others. Admin, webhooks and /healthz stay unprefixed.
urlpatterns += i18n_patterns(
    path("newsletter/", include("newsletter.urls")),
    path("newsletter/", include("inbox.urls")),
    prefix_default_language=False,
)
