"""Pages a reader reaches: subscribe, confirm, preferences, unsubscribe, privacy.

None of them tells a visitor whether an address is on the list: a signup always
answers the same page, and every bad or outdated link gets one generic page.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from articles.languages import reader_language
from newsletter import abuse
from newsletter.abuse import client_ip, user_agent
from newsletter.forms import (
    EmailChangeForm,
    EraseForm,
    LeavingReasonForm,
    PauseForm,
    ProfileForm,
    SubscribeForm,
)
from newsletter.models import Newsletter, Subscriber
from newsletter.selectors.newsletters import newsletter_default
from newsletter.selectors.subscribers import (
    consent_text_agreed,
    consent_text_current,
    pending_signup,
)
from newsletter.services.subscribers import (
    ConfirmOutcome,
    subscriber_confirm,
    subscriber_confirmation_resend,
    subscriber_email_change_request,
    subscriber_leaving_reason,
    subscriber_pause,
    subscriber_resubscribe,
    subscriber_resume,
    subscriber_signup_request,
    subscriber_update_profile,
)
from newsletter.services.withdrawals import subscriber_unsubscribe
from newsletter.tokens import confirmation_tokens, reader_tokens
from privacy.services import subscriber_data_export, subscriber_erase

logger = logging.getLogger(__name__)

FORM_PAGE = "subscribe-page"
# What the embeddable snippet may carry over to our page; the rest is typed here.
EMBED_FIELDS = {"email": 254, "name": 100, "organisation": 150}


def speak_to(request: HttpRequest, subscriber: Subscriber) -> None:
    """Answer in the reader's language (issue 14): a token link came from their own
    email, so their choice wins over the URL, the cookie and the browser."""
    language = reader_language(subscriber.language)
    translation.activate(language)
    request.LANGUAGE_CODE = language


def _bad_link(request: HttpRequest) -> HttpResponse:
    # One generic page for every bad token: it tells nobody whether an address exists.
    return render(request, "newsletter/bad_link.html", status=404)


# --- Subscribe ----------------------------------------------------------------------------


def _subscribe_page(
    request: HttpRequest,
    newsletter: Newsletter,
    form: SubscribeForm,
    *,
    status: int = 200,
    notice: str = "",
    alert: str = "",
) -> HttpResponse:
    context = {
        "newsletter": newsletter,
        "form": form,
        "consent_text": form.consent_text,
        "privacy_url": form.consent_text.privacy_url or settings.NEWSLETTER_PRIVACY_URL,
        "notice": notice,
        "alert": alert,
    }
    return render(request, "newsletter/subscribe.html", context, status=status)


def _fresh_form(
    request: HttpRequest,
    newsletter: Newsletter,
    consent_text,
    *,
    initial: dict | None = None,
    captcha: bool = False,
) -> SubscribeForm:
    initial = {
        # Issue 14: the language of the page, which follows the browser's Accept-Language.
        "language": reader_language(
            translation.get_language_from_request(request, check_path=True)
        ),
        **(initial or {}),
        "stamp": abuse.form_stamp(),
    }
    return SubscribeForm(
        initial=initial,
        newsletter=newsletter,
        consent_text=consent_text,
        captcha=captcha or abuse.captcha_required(request),
    )


def _posted_initial(request: HttpRequest) -> dict:
    """Return what the visitor typed, to show again in a fresh form (never the code)."""
    data = request.POST
    return {
        "email": data.get("email", "")[:254],
        "name": data.get("name", "")[:100],
        "organisation": data.get("organisation", "")[:150],
        "country": data.get("country", "")[:2],
        "categories": data.getlist("categories")[:50],
        "language": data.get("language", "")[:10],
        "consent": data.get("consent") == "on",
    }


def _check_your_inbox(request: HttpRequest, newsletter: Newsletter, email: str) -> HttpResponse:
    # The one answer to every submission that got past validation: new, pending,
    # active, unsubscribed, erased, trapped or throttled alike.
    context = {"newsletter": newsletter, "email": email[:254]}
    return render(request, "newsletter/subscribe_done.html", context)


def _closed(request: HttpRequest) -> HttpResponse:
    return render(request, "newsletter/subscribe_closed.html", status=503)


@never_cache
@require_http_methods(["GET", "POST"])
def subscribe(request: HttpRequest) -> HttpResponse:
    newsletter = newsletter_default()
    consent_text = consent_text_current(newsletter=newsletter)
    if consent_text is None:
        return _closed(request)
    if request.method == "GET":
        return _subscribe_page(request, newsletter, _fresh_form(request, newsletter, consent_text))

    def bind(captcha: bool) -> SubscribeForm:
        return SubscribeForm(
            request.POST, newsletter=newsletter, consent_text=consent_text, captcha=captcha
        )

    def fresh(captcha: bool) -> SubscribeForm:
        return _fresh_form(
            request, newsletter, consent_text, initial=_posted_initial(request), captcha=captcha
        )

    screened = abuse.submission_screen(request, newsletter=newsletter, bind=bind, fresh=fresh)
    answer = screened.answer(
        request,
        what="signup",
        page=lambda form, **shown: _subscribe_page(request, newsletter, form, **shown),
        done=lambda email: _check_your_inbox(request, newsletter, email),
    )
    if answer is not None:
        return answer
    form = screened.form
    email = form.cleaned_data["email"]
    subscriber_signup_request(
        newsletter=newsletter,
        email=email,
        profile=form.profile(),
        consent_text=consent_text,
        ip=client_ip(request),
        user_agent=user_agent(request),
        form=slugify(request.POST.get("form_name", ""))[:50] or FORM_PAGE,
    )
    return _check_your_inbox(request, newsletter, email)


# The portal's pages live on another origin and cannot carry our CSRF token, so the
# plain-HTML snippet posts here, and this view only shows our own subscription page
# with the address filled in: it writes nothing and sends nothing, so there is
# nothing to forge. The reader then reads the consent text and sends our form, with
# our CSRF token, honeypot, timing and limits. An endpoint that subscribed directly
# would let any site make its visitors' browsers sign up strangers from a thousand IPs.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def subscribe_embed(request: HttpRequest) -> HttpResponse:
    newsletter = newsletter_default()
    if request.method == "GET":
        context = {"newsletter": newsletter, "site_url": settings.SITE_URL}
        return render(request, "newsletter/embed.html", context)
    consent_text = consent_text_current(newsletter=newsletter)
    if consent_text is None:
        return _closed(request)
    initial = {
        field: " ".join(request.POST.get(field, "").split())[:limit]
        for field, limit in EMBED_FIELDS.items()
    }
    form = _fresh_form(request, newsletter, consent_text, initial=initial)
    notice = _("Almost done: choose your sections, read the consent text and press Subscribe.")
    return _subscribe_page(request, newsletter, form, notice=notice)


# --- Confirm ------------------------------------------------------------------------------


# Link scanners open (GET) every link in a message, so GET only shows a button.
@never_cache
@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    check = confirmation_tokens.check_token(token)
    subscriber = check.subscriber
    if subscriber is None or subscriber.status == Subscriber.Status.ERASED:
        return _bad_link(request)
    speak_to(request, subscriber)
    context = {"subscriber": subscriber, "newsletter": subscriber.newsletter, "email": check.email}
    changing = check.email.lower() != subscriber.email.lower()
    context["changing"] = changing
    if request.method == "POST" and "resend" in request.POST and check.problem is not None:
        subscriber_confirmation_resend(subscriber=subscriber, email=check.email if changing else "")
        return render(request, "newsletter/confirm_resent.html", context)
    if check.problem is not None:
        if not changing and subscriber.status == Subscriber.Status.ACTIVE:
            return _confirmed_page(request, subscriber, already=True)
        context["problem"] = check.problem
        return render(request, "newsletter/confirm_problem.html", context, status=410)
    pending = pending_signup(subscriber=subscriber, pending_id=check.pending_id)
    active = subscriber.status == Subscriber.Status.ACTIVE
    if active and not changing and pending is None:
        return _confirmed_page(request, subscriber, already=True)
    if request.method == "GET":
        # The details someone typed wait here until the address's owner presses the button.
        context["pending"] = pending
        context["updating"] = active and not changing
        context["consent_text"] = (
            pending.consent_text if pending and pending.consent_text_id else None
        ) or consent_text_agreed(subscriber=subscriber)
        return render(request, "newsletter/confirm.html", context)
    outcome = subscriber_confirm(
        subscriber=subscriber,
        email=check.email,
        ip=client_ip(request),
        user_agent=user_agent(request),
        pending_id=check.pending_id,
    )
    if outcome is ConfirmOutcome.TAKEN:
        return render(request, "newsletter/confirm_taken.html", context, status=409)
    subscriber.refresh_from_db()
    return _confirmed_page(
        request,
        subscriber,
        already=outcome is ConfirmOutcome.ALREADY,
        changed=outcome is ConfirmOutcome.CHANGED,
        updated=outcome is ConfirmOutcome.UPDATED,
    )


def _confirmed_page(
    request: HttpRequest,
    subscriber: Subscriber,
    *,
    already: bool = False,
    changed: bool = False,
    updated: bool = False,
    returned: bool = False,
) -> HttpResponse:
    context = {
        "subscriber": subscriber,
        "newsletter": subscriber.newsletter,
        "already": already,
        "changed": changed,
        "updated": updated,
        "returned": returned,
        "pref_token": reader_tokens.make_token(subscriber, "preferences"),
    }
    return render(request, "newsletter/confirmed.html", context)


# --- Preferences --------------------------------------------------------------------------


def _profile_initial(subscriber: Subscriber) -> dict:
    return {
        "name": subscriber.name,
        "organisation": subscriber.organisation,
        "country": subscriber.country,
        "categories": list(subscriber.categories.values_list("pk", flat=True)),
        "language": reader_language(subscriber.language),
    }


def _data_download(subscriber: Subscriber) -> HttpResponse:
    data = subscriber_data_export(subscriber=subscriber)
    response = HttpResponse(
        json.dumps(data, indent=2, ensure_ascii=False), content_type="application/json"
    )
    filename = f"{slugify(subscriber.newsletter.name)}-my-data.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    subscriber = reader_tokens.check_token(token, "preferences")
    if subscriber is None or subscriber.status == Subscriber.Status.ERASED:
        return _bad_link(request)
    speak_to(request, subscriber)
    newsletter = subscriber.newsletter
    action = request.POST.get("action", "profile") if request.method == "POST" else ""
    data = request.POST if request.method == "POST" else None
    ip, agent = client_ip(request), user_agent(request)
    forms = {
        "profile": ProfileForm(
            data if action == "profile" else None,
            newsletter=newsletter,
            initial=_profile_initial(subscriber),
        ),
        "email": EmailChangeForm(data if action == "email" else None),
        "pause": PauseForm(data if action == "pause" else None),
        "erase": EraseForm(data if action == "erase" else None),
    }
    done = ""
    status = 200
    if action == "export":
        return _data_download(subscriber)
    if action == "unsubscribe":
        subscriber_unsubscribe(subscriber=subscriber, method="preferences", ip=ip, user_agent=agent)
        subscriber.refresh_from_db()
        return _unsubscribed_page(request, subscriber)
    if action == "resume":
        subscriber_resume(subscriber=subscriber, ip=ip, user_agent=agent)
        done = "resumed"
    elif action in forms:
        form = forms[action]
        if not form.is_valid():
            status = 400
        elif action == "profile":
            subscriber_update_profile(
                subscriber=subscriber, profile=form.profile(), ip=ip, user_agent=agent
            )
            done = "saved"
        elif action == "email":
            subscriber_email_change_request(
                subscriber=subscriber, new_email=form.cleaned_data["email"]
            )
            done = "email"
            forms["email"] = EmailChangeForm()
        elif action == "pause":
            subscriber_pause(
                subscriber=subscriber, weeks=form.cleaned_data["weeks"], ip=ip, user_agent=agent
            )
            done = "paused"
        elif action == "erase":
            subscriber_erase(subscriber=subscriber, method="preferences")
            return render(request, "newsletter/erased.html", {"newsletter": newsletter})
    subscriber.refresh_from_db()
    if done == "saved":
        speak_to(request, subscriber)  # a new language shows at once
        forms["profile"] = ProfileForm(newsletter=newsletter, initial=_profile_initial(subscriber))
    context = {
        "subscriber": subscriber,
        "newsletter": newsletter,
        "token": token,
        "unsubscribe_token": reader_tokens.make_token(subscriber, "unsubscribe"),
        "done": done,
        "action": action,
        **{f"{name}_form": form for name, form in forms.items()},
    }
    return render(request, "newsletter/preferences.html", context, status=status)


# --- Unsubscribe --------------------------------------------------------------------------


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
    speak_to(request, subscriber)
    if request.method == "POST":
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        subscriber_unsubscribe(
            subscriber=subscriber,
            method="one-click" if one_click else "link",
            ip=client_ip(request),
            user_agent=user_agent(request),
        )
        # Always 200 with the page, never a redirect: RFC 8058 senders must not redirect.
        subscriber.refresh_from_db()
        return _unsubscribed_page(request, subscriber)
    context = {
        "subscriber": subscriber,
        "pref_token": reader_tokens.make_token(subscriber, "preferences"),
        "pause_weeks": PauseForm.base_fields["weeks"].choices,
    }
    return render(request, "newsletter/unsubscribe.html", context)


def _unsubscribed_page(
    request: HttpRequest,
    subscriber: Subscriber,
    *,
    reason_form: LeavingReasonForm | None = None,
    thanked: bool = False,
) -> HttpResponse:
    """The page after leaving: a one-step way back, and an optional "why are you leaving?"."""
    context = {
        "subscriber": subscriber,
        "newsletter": subscriber.newsletter,
        "token": reader_tokens.make_token(subscriber, "unsubscribe"),
        "consent_text": consent_text_current(newsletter=subscriber.newsletter),
        "reason_form": reason_form or LeavingReasonForm(),
        "thanked": thanked,
    }
    return render(request, "newsletter/unsubscribed.html", context)


# The two forms on the "you are unsubscribed" page. Unlike the one-click POST they come
# from our own page, so they carry the CSRF token like every other form.
@never_cache
@require_http_methods(["POST"])
def resubscribe(request: HttpRequest, token: str) -> HttpResponse:
    subscriber = reader_tokens.check_token(token, "unsubscribe")
    if subscriber is None:
        return _bad_link(request)
    came_back = subscriber_resubscribe(
        subscriber=subscriber, ip=client_ip(request), user_agent=user_agent(request)
    )
    subscriber.refresh_from_db()
    if not came_back and subscriber.status != Subscriber.Status.ACTIVE:
        # Bounced, complained or erased: only a fresh signup (double opt-in) can help.
        return _unsubscribed_page(request, subscriber)
    return _confirmed_page(request, subscriber, returned=came_back, already=not came_back)


@never_cache
@require_http_methods(["POST"])
def leaving_reason(request: HttpRequest, token: str) -> HttpResponse:
    subscriber = reader_tokens.check_token(token, "unsubscribe")
    if subscriber is None:
        return _bad_link(request)
    form = LeavingReasonForm(request.POST)
    if not form.is_valid():
        return _unsubscribed_page(request, subscriber, reason_form=form)
    subscriber_leaving_reason(
        subscriber=subscriber,
        reason=form.cleaned_data["reason"],
        comment=form.cleaned_data["comment"],
    )
    return _unsubscribed_page(request, subscriber, thanked=True)


# --- Privacy ------------------------------------------------------------------------------


def privacy(request: HttpRequest) -> HttpResponse:
    newsletter = newsletter_default()
    context = {
        "newsletter": newsletter,
        "consent_text": consent_text_current(newsletter=newsletter),
        "confirm_days": settings.NEWSLETTER_CONFIRM_MAX_AGE_DAYS,
        "purge_days": settings.NEWSLETTER_PENDING_PURGE_DAYS,
    }
    return render(request, "newsletter/privacy.html", context)
