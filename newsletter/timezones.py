"""The newsroom's time: every time a person sees or types is in the newsletter's zone.

The server may run in UTC (it should); editors in Beijing plan in Beijing time and
readers see the dates the newsroom printed. Pages activate the newsletter's zone for
the request, so Django's own widgets, lists and date filters read and show that zone;
emails rendered by workers, outside any request, activate it around the rendering.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from newsletter.models import Newsletter

# Machines' endpoints (ESP webhooks, health checks) show no times: they skip the query.
_PEOPLE_PREFIXES = ("/admin/", "/newsletter/")


def newsroom_timezone() -> zoneinfo.ZoneInfo | None:
    """Return the zone of the site's newsletter (the first active one), None if there is none."""
    name = (
        Newsletter.objects.filter(is_active=True)
        .order_by("pk")
        .values_list("timezone", flat=True)
        .first()
    )
    return zoneinfo.ZoneInfo(name) if name else None


class NewsroomTimezoneMiddleware:
    """Activate the newsletter's time zone for every page people use."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(_PEOPLE_PREFIXES):
            return self.get_response(request)
        zone = newsroom_timezone()
        if zone is None:
            return self.get_response(request)
        with timezone.override(zone):
            return self.get_response(request)
