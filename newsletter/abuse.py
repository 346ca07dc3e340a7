"""Screening of every public form against bots: honeypot, fill time, limits, identifying code.

The subscription form and the inbox's Ask and Write to Us forms all take their trap
fields (TrapFields), their identifying code (identifying_code_field) and their whole
POST flow (submission_screen, then Screened.answer) from here, and share its counters.

A bot that fills the form with a stranger's address must not turn us into a mail
bomb, and must not learn anything either; a person must never be misled. So only a
filled honeypot (which no person sees) gets the same "check your inbox" page as a
good submission and does nothing; everyone else is told what happened: their form's
errors, or the form back with the identifying code and a sentence saying why
(`submission_screen`, used by every public form). The counters live in the shared
cache (Redis in production) so every web process sees them. Counters use fixed
windows keyed by the window's number: simple, atomic with `add` + `incr`, and a key
expires by itself when its window is over.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from captcha.fields import CaptchaField, CaptchaTextInput
from django import forms
from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy

from newsletter.models import Newsletter
from newsletter.suppression import email_hash, normalise_email

logger = logging.getLogger(__name__)

HOUR = 3600
DAY = 86400
_STAMP_SALT = "newsletter.abuse.form-stamp"
# A form left open longer than this gets a fresh stamp instead of being accepted, so a
# harvested stamp cannot be replayed for ever.
STAMP_MAX_AGE = DAY


@dataclass(frozen=True)
class Verdict:
    """Whether a signup may go ahead; `reason` says why not (for logs, never for the page)."""

    allowed: bool
    reason: str = ""


def client_ip(request: HttpRequest) -> str | None:
    """Return the client's address, taken through NEWSLETTER_PROXY_COUNT trusted proxies.

    Each trusted proxy appends the address it saw to X-Forwarded-For, so the client is
    the entry that many places from the right; anything further left the client wrote.
    """
    hops = settings.NEWSLETTER_PROXY_COUNT
    if hops:
        forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= hops:
            candidate = forwarded[-hops]
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                pass  # a broken header: fall back to the connection's address
    return request.META.get("REMOTE_ADDR") or None


def user_agent(request: HttpRequest) -> str:
    """Return the client's User-Agent as consent records keep it (300 characters)."""
    return request.headers.get("User-Agent", "")[:300]


def ip_bucket(ip: str | None) -> str:
    """Return the unit an IP limit counts: the address, or its /64 for IPv6.

    One IPv6 customer usually holds a whole /64, so counting single addresses would
    let a bot rotate through billions of them.
    """
    if not ip:
        return "unknown"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _window_key(scope: str, ident: str, window: int) -> tuple[str, int]:
    """Return the counter's key for the current window and the seconds it has left."""
    now = int(time.time())
    return f"nl:rl:{scope}:{ident}:{now // window}", window - now % window + 1


def _count(scope: str, ident: str, window: int) -> int:
    key, _ttl = _window_key(scope, ident, window)
    return int(cache.get(key) or 0)


def _hit(scope: str, ident: str, window: int) -> int:
    """Add one to this window's counter and return the new value."""
    key, ttl = _window_key(scope, ident, window)
    cache.add(key, 0, timeout=ttl)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=ttl)
        return 1


def ip_attempts(request: HttpRequest) -> int:
    """Return how many signups this client's IP made in the current hour."""
    return _count("ip", ip_bucket(client_ip(request)), HOUR)


def captcha_required(request: HttpRequest) -> bool:
    """Whether the form must ask for the identifying code from this client."""
    if settings.NEWSLETTER_CAPTCHA_ALWAYS:
        return True
    return ip_attempts(request) >= settings.NEWSLETTER_IP_SOFT_LIMIT


def record_attempt(request: HttpRequest) -> int:
    """Count one signup submission against the client's IP; return the hour's count."""
    return _hit("ip", ip_bucket(client_ip(request)), HOUR)


def form_stamp() -> str:
    """Return a signed "form shown at" stamp for the hidden field of a signup form."""
    return signing.TimestampSigner(salt=_STAMP_SALT).sign(str(int(time.time())))


def form_age(stamp: str) -> float | None:
    """Return the seconds since `stamp` was issued, or None for a missing or forged one."""
    try:
        issued = signing.TimestampSigner(salt=_STAMP_SALT).unsign(stamp, max_age=STAMP_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired is a BadSignature too
        return None
    try:
        return time.time() - int(issued)
    except ValueError:
        return None


def stamp_expired(stamp: str) -> bool:
    """Whether `stamp` is genuine but older than STAMP_MAX_AGE (an old open tab)."""
    signer = signing.TimestampSigner(salt=_STAMP_SALT)
    try:
        signer.unsign(stamp, max_age=STAMP_MAX_AGE)
    except signing.SignatureExpired:
        return True
    except signing.BadSignature:
        return False
    return False


def captcha_needed(attempts: int) -> bool:
    """Whether a submission that brought the IP's count to `attempts` must carry the code."""
    return settings.NEWSLETTER_CAPTCHA_ALWAYS or attempts > settings.NEWSLETTER_IP_SOFT_LIMIT


def ip_over_limit(attempts: int) -> bool:
    return attempts > settings.NEWSLETTER_IP_HARD_LIMIT


# --- The fields every public form carries ------------------------------------------------


class IdentifyingCodeInput(CaptchaTextInput):
    """The captcha as the portal shows it: the image, a reload button, the box to type in."""

    # In the app's templates/: widgets render with the form renderer, which reads app dirs only.
    template_name = "newsletter/widgets/identifying_code.html"


def identifying_code_field() -> CaptchaField:
    """Return the "Identifying code" field: the picture, its Reload button, the box to type in."""
    return CaptchaField(
        label=gettext_lazy("Identifying code"),
        help_text=gettext_lazy(
            "Type the four characters in the picture. Hard to read? Reload it, or listen to it."
        )
        if settings.CAPTCHA_FLITE_PATH
        else gettext_lazy("Type the four characters in the picture. Hard to read? Reload it."),
        widget=IdentifyingCodeInput(attrs={"aria-describedby": "id_captcha_helptext"}),
        error_messages={
            "invalid": gettext_lazy(
                "The identifying code did not match; here is a new one to type."
            ),
            "required": gettext_lazy("Type the identifying code shown in the picture."),
        },
    )


class TrapFields(forms.Form):
    """The fields abuse.py reads on every public form: a honeypot and the "shown at" stamp."""

    # Bots fill in every field they find; people never see this one.
    website = forms.CharField(
        required=False,
        label=gettext_lazy("Leave this empty"),
        widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
    )
    stamp = forms.CharField(required=False, widget=forms.HiddenInput)


# --- The flow of a POST -----------------------------------------------------------------


STALE_NOTICE = gettext_lazy(
    "This page was open for a long time: please check your details and send again."
)
TOO_FAST = gettext_lazy(
    "You sent the form back very quickly, as programs do (a browser's autofill can, too). "
    "Please type the identifying code to show you are a person; what you typed is kept. "
    "Nothing has been sent yet."
)
BUSY_NETWORK = gettext_lazy(
    "Many forms were sent from your network in the last hour. Please type the identifying "
    "code to show you are a person; what you typed is kept. Nothing has been sent yet."
)
OVER_IP_LIMIT = gettext_lazy(
    "Too many forms were sent from your network in the last hour, so we cannot take this "
    "one now. Please try again in an hour. Nothing has been sent."
)
OVER_ADDRESS_LIMIT = gettext_lazy(
    "This email address was given to us many times today, so to protect its owner we take "
    "no more for it until tomorrow. Nothing has been sent."
)


@dataclass(frozen=True)
class Screened:
    """What a public form's POST comes to, once screened and validated.

    `silent`: only a filled honeypot; the caller answers as if all went well and does
    nothing (a bot must learn nothing). `accepted`: `form` is valid and may be acted
    on. Otherwise the caller shows `form` again with `status`, `notice` and `alert`:
    a person is always told the truth.
    """

    form: forms.Form
    silent: bool = False
    accepted: bool = False
    status: int = 200
    notice: str = ""
    alert: str = ""

    def answer(
        self,
        request: HttpRequest,
        *,
        what: str,
        page: Callable[..., HttpResponse],
        done: Callable[[str], HttpResponse],
    ) -> HttpResponse | None:
        """Return the page for a submission not accepted; None when the caller may act.

        `page(form, status=, notice=, alert=)` shows the form again; `done(email)` is
        the one answer to every submission that got past validation, which a filled
        honeypot gets too, with what was typed (`what` names the form in the log).
        """
        if self.silent:
            logger.info("%s dropped: honeypot from %s", what, client_ip(request))
            return done(normalise_email(request.POST.get("email", "")[:254]))
        if not self.accepted:
            return page(self.form, status=self.status, notice=self.notice, alert=self.alert)
        return None


def submission_screen(
    request: HttpRequest,
    *,
    newsletter: Newsletter,
    bind: Callable[[bool], forms.Form],
    fresh: Callable[[bool], forms.Form],
) -> Screened:
    """Screen one POST of a public form (subscribe, Ask, Write to Us); the one place for it.

    `bind(captcha)` returns the form bound to the POST, with the identifying code
    when `captcha`; `fresh(captcha)` a new form filled with what was typed. Order:
    the POST counts against its IP; the no-JavaScript Reload and an old open page
    come back; a filled honeypot is the only silent answer; then the form is
    validated, so a person sees their errors first. From an IP past the soft limit
    the form needs the code; a form sent back too fast (or without a genuine stamp)
    comes back with the code: either way a sentence says why and nothing is done.
    Past the hard IP limit or the address's daily limit, the form comes back with a
    sentence and nothing is done.
    """
    attempts = record_attempt(request)
    data = request.POST
    if "reload_code" in data:
        return Screened(fresh(True))
    stamp = data.get("stamp", "")
    if stamp_expired(stamp):
        return Screened(fresh(captcha_needed(attempts)), notice=str(STALE_NOTICE))
    if data.get("website", ""):
        return Screened(fresh(False), silent=True)
    age = form_age(stamp)
    too_fast = age is None or age < settings.NEWSLETTER_MIN_FILL_SECONDS
    busy = captcha_needed(attempts)
    form = bind(busy or "captcha_0" in data)
    if not form.is_valid():
        if set(form.errors) == {"captcha"}:
            if "captcha_0" in data:
                # The code was on the page: wrong or not typed; a new picture.
                alert = str(form.errors["captcha"][0])
            else:
                alert = str(TOO_FAST if too_fast else BUSY_NETWORK)
            return Screened(fresh(True), status=400, alert=alert)
        return Screened(form, status=400)
    if too_fast:
        # Even with a solved code: the new form's stamp starts the clock again, and a
        # person typing the new code takes longer than a program.
        return Screened(fresh(True), status=400, alert=str(TOO_FAST))
    if ip_over_limit(attempts):
        return Screened(fresh(True), status=429, alert=str(OVER_IP_LIMIT))
    email = form.cleaned_data.get("email")
    if email and not address_limit_check(newsletter=newsletter, email=email).allowed:
        return Screened(fresh(busy), status=429, alert=str(OVER_ADDRESS_LIMIT))
    return Screened(form, accepted=True)


def address_limit_check(*, newsletter: Newsletter, email: str) -> Verdict:
    """Count one submission naming `email`, from anywhere; refuse past the daily limit."""
    ident = f"{newsletter.pk}:{email_hash(email)}"
    if _hit("address", ident, DAY) > settings.NEWSLETTER_ADDRESS_LIMIT:
        return Verdict(False, "address-limit")
    return Verdict(True)


def email_allowance(*, newsletter: Newsletter, email: str) -> bool:
    """Claim this address's one signup email of the interval; False if already spent.

    `cache.add` is atomic (SET NX in Redis), so of two concurrent requests only one
    gets the email out. The value is the claim's time, compared with the clock too,
    so the interval holds even where a key outlives its timeout.
    """
    interval = settings.NEWSLETTER_EMAIL_INTERVAL_HOURS * HOUR
    key = f"nl:mail:{newsletter.pk}:{email_hash(email)}"
    now = time.time()
    if cache.add(key, now, timeout=interval):
        return True
    claimed = cache.get(key)
    if claimed is not None and now - float(claimed) < interval:
        return False
    cache.set(key, now, timeout=interval)
    return True


def email_allowance_reset(*, newsletter: Newsletter, email: str) -> None:
    """Forget the address's claim (an admin resends a confirmation on purpose)."""
    cache.delete(f"nl:mail:{newsletter.pk}:{email_hash(email)}")
