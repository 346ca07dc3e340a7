"""The "keep sending it" button of the sunset re-permission email."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from newsletter.services.sunset import repermission_answer, repermission_from_token
from newsletter.views.readers import speak_to


# Mail scanners open every link, so GET only shows the button and POST answers.
@never_cache
@require_http_methods(["GET", "POST"])
def keep(request: HttpRequest, token: str) -> HttpResponse:
    repermission = repermission_from_token(token)
    if repermission is None:
        return render(request, "newsletter/bad_link.html", status=404)
    speak_to(request, repermission.subscriber)
    answered = request.method == "POST" and repermission_answer(repermission=repermission)
    context = {"subscriber": repermission.subscriber, "answered": answered}
    return render(request, "newsletter/keep.html", context)
