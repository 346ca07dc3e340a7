"""Which language a reader page speaks (issue 14).

Reader pages live at /newsletter/… in the default language and at /<code>/newsletter/…
in the others (config/urls.py). A visitor arriving at an unprefixed page whose
browser prefers another of our languages (Accept-Language), or who chose one with
the switcher (a cookie), is sent to that language's page: the portal links to one
address for everybody, and every reader still lands in their own language.

The switcher is plain links with `?language=<code>`: the choice is kept in the
language cookie and the visitor sent on to the clean URL of that language. Links,
not a form, so pages carry no CSRF token and stay byte-for-byte the same for
everyone (the signup answer must not differ between visitors).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.middleware.locale import LocaleMiddleware
from django.urls import is_valid_path, translate_url
from django.utils import translation
from django.utils.cache import patch_vary_headers

# Unprefixed paths that have a page per language.
_READER_PREFIX = "/newsletter/"
SWITCH_PARAMETER = "language"


def _is_reader_page(path: str) -> bool:
    """Whether `path` is a reader page: /newsletter/… or /<one of our languages>/newsletter/…."""
    if path.startswith(_READER_PREFIX):
        return True
    code, _slash, rest = path[1:].partition("/")
    return code in dict(settings.LANGUAGES) and f"/{rest}".startswith(_READER_PREFIX)


class ReaderLocaleMiddleware(LocaleMiddleware):
    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        super().process_request(request)
        if request.method not in ("GET", "HEAD") or not _is_reader_page(request.path_info):
            return None
        chosen = request.GET.get(SWITCH_PARAMETER)
        if chosen is not None:
            return self._switch(request, chosen)
        if not request.path_info.startswith(_READER_PREFIX):
            return None
        # No prefix: the default language's page. Does the visitor want another?
        wanted = translation.get_language_from_request(request, check_path=False)
        if wanted == settings.LANGUAGE_CODE or wanted not in dict(settings.LANGUAGES):
            return None
        path = f"/{wanted}{request.path_info}"
        with translation.override(wanted):  # i18n patterns resolve in the active language
            if not is_valid_path(path, getattr(request, "urlconf", None)):
                return None
        query = request.META.get("QUERY_STRING", "")
        response = HttpResponseRedirect(
            f"{request.META.get('SCRIPT_NAME', '')}{path}" + (f"?{query}" if query else "")
        )
        patch_vary_headers(response, ("Accept-Language", "Cookie"))
        return response

    def _switch(self, request: HttpRequest, chosen: str) -> HttpResponse:
        """Remember the language picked in the switcher and go to the page in it."""
        query = request.GET.copy()
        del query[SWITCH_PARAMETER]
        rest = f"?{query.urlencode()}" if query else ""
        if chosen not in dict(settings.LANGUAGES):
            return HttpResponseRedirect(request.path + rest)
        response = HttpResponseRedirect(translate_url(request.path, chosen) + rest)
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            chosen,
            max_age=settings.LANGUAGE_COOKIE_AGE,
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=True,
        )
        return response
