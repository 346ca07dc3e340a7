from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from articles.models import Category
from newsletter.models import Subscriber
from newsletter.services.subscribers import subscriber_unsubscribe
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
