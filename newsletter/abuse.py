"""Defences of every signup path against bots: honeypot, fill time, rate limits, captcha.

A bot that fills the form with a stranger's address must not turn us into a mail
bomb, and must not learn anything either. So a trapped or throttled submission gets
the same "check your inbox" page as a good one and simply does nothing, and the
counters live in the shared cache (Redis in production) so every web process sees
them. Counters use fixed windows keyed by the window's number: simple, atomic with
`add` + `incr`, and a key expires by itself when its window is over.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest

from newsletter.models import Newsletter
from newsletter.suppression import email_hash

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


def trap_check(*, honeypot: str, stamp: str) -> Verdict:
    """Return whether a submission looks human: empty honeypot, filled in no faster than people."""
    if honeypot:
        return Verdict(False, "honeypot")
    age = form_age(stamp)
    if age is None:
        return Verdict(False, "no-stamp")
    if age < settings.NEWSLETTER_MIN_FILL_SECONDS:
        return Verdict(False, "too-fast")
    return Verdict(True)


def captcha_needed(attempts: int) -> bool:
    """Whether a submission that brought the IP's count to `attempts` must carry the code."""
    return settings.NEWSLETTER_CAPTCHA_ALWAYS or attempts > settings.NEWSLETTER_IP_SOFT_LIMIT


def ip_over_limit(attempts: int) -> bool:
    return attempts > settings.NEWSLETTER_IP_HARD_LIMIT


@dataclass(frozen=True)
class Screening:
    """What the defences make of one POST of a public form, before its fields are read.

    `stale`: the stamp is genuine but older than STAMP_MAX_AGE, so the form goes back to
    its sender to be sent again. `verdict`: a trapped or over-limit POST is not allowed.
    `attempts`: this IP's count for the hour, which says whether the code was needed.
    """

    attempts: int
    stale: bool
    verdict: Verdict

    @property
    def captcha_needed(self) -> bool:
        return captcha_needed(self.attempts)


def submission_screen(request: HttpRequest) -> Screening:
    """Count the POST against its IP and check the honeypot, fill time and hard limit."""
    attempts = record_attempt(request)
    stamp = request.POST.get("stamp", "")
    if stamp_expired(stamp):
        return Screening(attempts, stale=True, verdict=Verdict(True))
    verdict = trap_check(honeypot=request.POST.get("website", ""), stamp=stamp)
    if verdict.allowed and ip_over_limit(attempts):
        verdict = Verdict(False, "ip-limit")
    return Screening(attempts, stale=False, verdict=verdict)


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
