"""/healthz for load balancers and uptime checks.

The public gets only the verdict (200 or 503, body "ok" or "error"): which service
failed, and how, tells an attacker what to aim at. Staff signed in to admin, and
requests from the machine itself (a local probe, `curl localhost`), get each check.
"""

from __future__ import annotations

import ipaddress

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache


def _may_see_detail(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return True
    # The connection's own address, never X-Forwarded-For: a client can write that.
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """Answer 200 when the database, the cache and the broker answer, else 503."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        cache.set("healthz", "1", 10)
        checks["cache"] = "ok" if cache.get("healthz") == "1" else "error: no read-back"
    except Exception as exc:
        checks["cache"] = f"error: {type(exc).__name__}"
    checks["broker"] = _broker_check()
    healthy = all(value == "ok" or value == "embedded" for value in checks.values())
    if not _may_see_detail(request):
        return HttpResponse(
            "ok" if healthy else "error",
            status=200 if healthy else 503,
            content_type="text/plain",
        )
    return JsonResponse(
        {"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503
    )


def _broker_check() -> str:
    from config.celery import app

    if app.conf.task_always_eager:
        return "embedded"
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}"
