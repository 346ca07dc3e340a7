from django.contrib import admin
from django.urls import include, path

from newsletter.views.health import healthz

admin.site.site_header = "Belt & Road Weekly"
admin.site.site_title = "Belt & Road Weekly admin"
admin.site.index_title = "Newsroom"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("newsletter/", include("newsletter.urls")),
    path("anymail/", include("anymail.urls")),
    path("captcha/", include("captcha.urls")),
    path("healthz", healthz, name="healthz"),
]
