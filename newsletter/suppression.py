"""Addresses that must never be mailed again, stored only as a keyed hash.

Erasure, hard bounces and complaints leave a Suppression row. Every path that could
bring an address back — signup, import, an ESP webhook — asks `is_suppressed` first,
and none of them needs the address itself to be stored.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.crypto import salted_hmac

from newsletter.models import Newsletter, Suppression


def normalise_email(email: str) -> str:
    """Return the address as stored and compared: trimmed, lower-cased, IDN domain in ASCII."""
    email = email.strip()
    local, _, domain = email.rpartition("@")
    if not local:
        return email.lower()
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        pass  # left as typed; address validation rejects it with a clear message
    return f"{local}@{domain}".lower()


def email_hash(email: str) -> str:
    """Return the keyed hash (HMAC-SHA256 with SECRET_KEY) of a normalised address."""
    return salted_hmac(
        "newsletter.suppression", normalise_email(email), algorithm="sha256"
    ).hexdigest()


def is_suppressed(*, newsletter: Newsletter, email: str) -> bool:
    return Suppression.objects.filter(newsletter=newsletter, email_hash=email_hash(email)).exists()


def suppress(*, newsletter: Newsletter, email: str, reason: str) -> None:
    """Record that `email` must not be mailed again; recording it twice is harmless."""
    try:
        with transaction.atomic():
            Suppression.objects.get_or_create(
                newsletter=newsletter, email_hash=email_hash(email), defaults={"reason": reason}
            )
    except IntegrityError:
        pass  # a concurrent request recorded it first
