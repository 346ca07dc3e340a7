"""The reader pages: "Ask Us A Question" and "Write to Us", and their embeddable snippets.

They run the subscription form's defences (newsletter/abuse.py) with the same counters:
a trapped or throttled submission gets the same "thank you" page as a good one and
stores and sends nothing.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from inbox.forms import TicketForm
from inbox.models import QUESTION_MAX_CHARS, STORY_MAX_CHARS, Ticket
from inbox.services import Message, ticket_submit
from newsletter import abuse
from newsletter.selectors.newsletters import newsletter_default
from newsletter.selectors.subscribers import consent_text_current

logger = logging.getLogger(__name__)

QUESTION, CONTRIBUTION = Ticket.Kind.QUESTION, Ticket.Kind.CONTRIBUTION
FORM_PAGE = {QUESTION: "ask-page", CONTRIBUTION: "write-page"}
# What the portal's plain-HTML snippets may carry over to our page; the rest is typed here.
EMBED_FIELDS = {
    QUESTION: {"email": 254, "name": 100, "body": QUESTION_MAX_CHARS},
    CONTRIBUTION: {"email": 254, "name": 100},
}


def _fresh_form(kind: str, newsletter_consent, *, initial: dict | None = None) -> TicketForm:
    return TicketForm(
        initial={**(initial or {}), "stamp": abuse.form_stamp()},
        kind=kind,
        newsletter_consent=newsletter_consent,
    )


def _posted_initial(request: HttpRequest, kind: str) -> dict:
    """Return what the visitor typed, to show again in a fresh form (never the code or file)."""
    data = request.POST
    limit = QUESTION_MAX_CHARS if kind == QUESTION else STORY_MAX_CHARS
    return {
        "name": data.get("name", "")[:100],
        "email": data.get("email", "")[:254],
        "organisation": data.get("organisation", "")[:150],
        "country": data.get("country", "")[:2],
        "body": data.get("body", "")[: limit * 2],
        "link": data.get("link", "")[:500],
        "consent": data.get("consent") == "on",
        "subscribe": data.get("subscribe") == "on",
    }


def _page(
    request: HttpRequest,
    form: TicketForm,
    *,
    status: int = 200,
    notice: str = "",
    alert: str = "",
) -> HttpResponse:
    newsletter = newsletter_default()
    consent = form.newsletter_consent
    context = {
        "newsletter": newsletter,
        "form": form,
        "kind": form.kind,
        "question": form.kind == QUESTION,
        "privacy_url": (consent.privacy_url if consent else "") or settings.NEWSLETTER_PRIVACY_URL,
        "notice": notice,
        "alert": alert,
        # Browsers never keep a chosen file when a page comes back: say so, by its name.
        "file_again": form.file_not_kept if form.is_bound else "",
    }
    return render(request, "inbox/ticket_form.html", context, status=status)


def _thanks(request: HttpRequest, kind: str, email: str) -> HttpResponse:
    # The one answer to every submission that got past validation, stored or dropped.
    context = {
        "newsletter": newsletter_default(),
        "question": kind == QUESTION,
        "email": email[:254],
    }
    return render(request, "inbox/ticket_done.html", context)


def _ticket_view(request: HttpRequest, kind: str) -> HttpResponse:
    newsletter = newsletter_default()
    newsletter_consent = consent_text_current(newsletter=newsletter)
    if request.method == "GET":
        return _page(request, _fresh_form(kind, newsletter_consent))

    def bind(captcha: bool) -> TicketForm:
        # The code is on every submission of these forms (see the module's docstring).
        return TicketForm(
            request.POST, request.FILES, kind=kind, newsletter_consent=newsletter_consent
        )

    def fresh(captcha: bool) -> TicketForm:
        initial = _posted_initial(request, kind)
        return _fresh_form(kind, newsletter_consent, initial=initial)

    screened = abuse.submission_screen(request, newsletter=newsletter, bind=bind, fresh=fresh)
    answer = screened.answer(
        request,
        what=kind,
        page=lambda form, **shown: _page(request, form, **shown),
        done=lambda email: _thanks(request, kind, email),
    )
    if answer is not None:
        return answer
    form = screened.form
    data = form.cleaned_data
    ticket_submit(
        kind=kind,
        message=Message(
            name=data["name"],
            email=data["email"],
            organisation=data["organisation"],
            country=data["country"],
            body=data["body"],
            link=data.get("link") or "",
            consent_text=form.consent_wording,
        ),
        attachment=data.get("attachment"),
        subscribe=newsletter_consent if data.get("subscribe") else None,
        ip=abuse.client_ip(request),
        user_agent=abuse.user_agent(request),
        form=slugify(request.POST.get("form_name", ""))[:50] or FORM_PAGE[kind],
    )
    return _thanks(request, kind, data["email"])


@never_cache
@require_http_methods(["GET", "POST"])
def ask(request: HttpRequest) -> HttpResponse:
    return _ticket_view(request, QUESTION)


@never_cache
@require_http_methods(["GET", "POST"])
def write(request: HttpRequest) -> HttpResponse:
    return _ticket_view(request, CONTRIBUTION)


# As with the subscription snippet (newsletter/views/readers.py): the portal is another
# origin and cannot carry our CSRF token, so its plain-HTML form posts here and this
# view only opens our own page with what was typed filled in. It stores and sends
# nothing; the reader then sends our form, with CSRF, the code, honeypot and limits.
def _embed(request: HttpRequest, kind: str) -> HttpResponse:
    newsletter = newsletter_default()
    if request.method == "GET":
        context = {
            "newsletter": newsletter,
            "site_url": settings.SITE_URL,
            "question": kind == QUESTION,
            "snippet": f"inbox/includes/embed_{kind}.html",
        }
        return render(request, "inbox/embed.html", context)
    initial = {
        field: request.POST.get(field, "")[:limit].strip()
        if field == "body"
        else " ".join(request.POST.get(field, "").split())[:limit]
        for field, limit in EMBED_FIELDS[kind].items()
    }
    form = _fresh_form(kind, consent_text_current(newsletter=newsletter), initial=initial)
    notice = _("Almost done: add your details, read the consent text, type the code and send.")
    return _page(request, form, notice=notice)


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def ask_embed(request: HttpRequest) -> HttpResponse:
    return _embed(request, QUESTION)


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def write_embed(request: HttpRequest) -> HttpResponse:
    return _embed(request, CONTRIBUTION)
