from __future__ import annotations

from django import forms
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from articles.models import Category
from newsletter.digest import digest_build, digest_context
from newsletter.models import Subscriber
from newsletter.selectors import issues_published, newsletter_default
from newsletter.services import subscriber_unsubscribe
from newsletter.tokens import reader_tokens


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _bad_link(request: HttpRequest) -> HttpResponse:
    # One generic page for every bad token: it tells nobody whether an address exists.
    return render(request, "newsletter/bad_link.html", status=404)


# Mail servers and link scanners open (GET) every link in a message, so GET only
# shows a button and only POST acts. RFC 8058 one-click POSTs come from mailbox
# providers without cookies or a CSRF token, hence csrf_exempt: the signed token in
# the URL is what authorises the request.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    subscriber = reader_tokens.check_token(token, "unsubscribe")
    if subscriber is None:
        return _bad_link(request)
    if request.method == "POST":
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        subscriber_unsubscribe(
            subscriber=subscriber,
            method="one-click" if one_click else "link",
            ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
        )
        # Always 200 with the page, never a redirect: RFC 8058 senders must not redirect.
        return render(request, "newsletter/unsubscribed.html", {"subscriber": subscriber})
    context = {
        "subscriber": subscriber,
        "pref_token": reader_tokens.make_token(subscriber, "preferences"),
    }
    return render(request, "newsletter/unsubscribe.html", context)


class CategoriesForm(forms.Form):
    categories = forms.ModelMultipleChoiceField(
        queryset=Category.objects.all(),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label=_("Sections"),
    )


@never_cache
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    subscriber = reader_tokens.check_token(token, "preferences")
    if subscriber is None or subscriber.status == Subscriber.Status.ERASED:
        return _bad_link(request)
    saved = False
    if request.method == "POST":
        form = CategoriesForm(request.POST)
        if form.is_valid():
            subscriber.categories.set(form.cleaned_data["categories"])
            saved = True
    else:
        form = CategoriesForm(initial={"categories": subscriber.categories.all()})
    return render(
        request,
        "newsletter/preferences.html",
        {"subscriber": subscriber, "form": form, "saved": saved, "token": token},
    )


def archive(request: HttpRequest) -> HttpResponse:
    newsletter = newsletter_default()
    page = Paginator(issues_published(newsletter=newsletter), 20).get_page(request.GET.get("page"))
    return render(request, "newsletter/archive.html", {"newsletter": newsletter, "page": page})


def archive_issue(request: HttpRequest, number: int) -> HttpResponse:
    newsletter = newsletter_default()
    issue = get_object_or_404(issues_published(newsletter=newsletter), number=number)
    digest = digest_build(issue)
    context = digest_context(digest, digest.section_keys)
    return render(request, "newsletter/archive_issue.html", context)


def healthz(request: HttpRequest) -> JsonResponse:
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
