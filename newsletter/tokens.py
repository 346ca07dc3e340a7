"""Signed tokens that let a reader act on their subscription from an email link.

Built on Django's salted_hmac and signing, like contrib.auth's password-reset tokens.
Every token is bound to one subscription (one reader of one newsletter) and to its
secret, so rotating the secret (on erasure, say) invalidates every link at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.core import signing
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.http import base36_to_int, int_to_base36

from newsletter.models import Issue, Subscriber

_PURPOSES = ("unsubscribe", "preferences")


class ReaderTokenGenerator:
    """Make and check the long-lived tokens in every digest: unsubscribe and preferences.

    They do not expire: RFC 8058 one-click unsubscribe must work for as long as the
    email sits in an inbox.
    """

    key_salt = "newsletter.tokens.ReaderTokenGenerator"

    def make_token(self, subscriber: Subscriber, purpose: str) -> str:
        """Return a token for `purpose` that identifies this subscription."""
        return f"{int_to_base36(subscriber.pk)}-{self._hash(subscriber.pk, subscriber.newsletter_id, subscriber.token_secret, purpose)}"

    def check_token(self, token: str, purpose: str) -> Subscriber | None:
        """Return the subscriber a valid token names, or None for a bad or tampered one."""
        if (
            purpose not in _PURPOSES
            or not isinstance(token, str)
            or token.count("-") != 1
            or len(token) > 80
        ):
            return None
        pk_b36, digest = token.split("-")
        try:
            pk = base36_to_int(pk_b36)
        except ValueError:
            return None
        subscriber = Subscriber.objects.select_related("newsletter").filter(pk=pk).first()
        if subscriber is None:
            return None
        expected = self._hash(
            subscriber.pk, subscriber.newsletter_id, subscriber.token_secret, purpose
        )
        return subscriber if constant_time_compare(digest, expected) else None

    def _hash(self, pk: int, newsletter_id: int, secret: str, purpose: str) -> str:
        value = f"{pk}:{newsletter_id}:{secret}:{purpose}"
        return salted_hmac(self.key_salt, value, algorithm="sha256").hexdigest()[:32]


reader_tokens = ReaderTokenGenerator()


class TokenProblem(StrEnum):
    """Why a confirmation link no longer confirms (the page says which)."""

    EXPIRED = "expired"
    USED = "used"  # confirmed already, or a newer link replaced it
    INVALID = "invalid"


@dataclass(frozen=True)
class ConfirmationCheck:
    subscriber: Subscriber | None
    email: str
    problem: TokenProblem | None  # None when the link is valid
    pending_id: int | None = None  # the PendingSignup whose details the owner is asked to apply


class ConfirmationTokenGenerator:
    """Make and check double opt-in tokens: timestamped, and spent once confirmed.

    The signed value covers the address being confirmed and the reader's confirmation
    time, so a used link, or one for an address since changed, no longer matches.
    A token may carry a new address (a change of email) that takes effect on confirming.
    """

    salt = "newsletter.tokens.confirm"

    def make_token(
        self, subscriber: Subscriber, *, email: str | None = None, pending_id: int | None = None
    ) -> str:
        email = email or subscriber.email
        data = {"s": subscriber.pk, "h": self._state(subscriber, email)}
        if email != subscriber.email:
            data["e"] = email
        if pending_id:
            data["p"] = pending_id
        return signing.dumps(data, salt=self.salt, compress=True)

    def check_token(self, token: str) -> ConfirmationCheck:
        max_age = settings.NEWSLETTER_CONFIRM_MAX_AGE_DAYS * 86400
        problem = None
        try:
            data = signing.loads(token, salt=self.salt, max_age=max_age)
        except signing.SignatureExpired:
            problem = TokenProblem.EXPIRED
            data = signing.loads(token, salt=self.salt)
        except signing.BadSignature:
            return ConfirmationCheck(None, "", TokenProblem.INVALID)
        if not isinstance(data, dict) or not isinstance(data.get("s"), int):
            return ConfirmationCheck(None, "", TokenProblem.INVALID)
        subscriber = Subscriber.objects.select_related("newsletter").filter(pk=data["s"]).first()
        if subscriber is None:
            return ConfirmationCheck(None, "", TokenProblem.INVALID)
        email = str(data.get("e") or subscriber.email)
        pending = data.get("p") if isinstance(data.get("p"), int) else None
        if problem:
            return ConfirmationCheck(subscriber, email, problem, pending)
        if not constant_time_compare(str(data.get("h")), self._state(subscriber, email)):
            return ConfirmationCheck(subscriber, email, TokenProblem.USED, pending)
        return ConfirmationCheck(subscriber, email, None, pending)

    def _state(self, subscriber: Subscriber, email: str) -> str:
        confirmed = subscriber.confirmed_at.isoformat() if subscriber.confirmed_at else ""
        value = f"{subscriber.pk}:{email.lower()}:{subscriber.token_secret}:{subscriber.status}:{confirmed}"
        return salted_hmac(self.salt, value, algorithm="sha256").hexdigest()[:24]


confirmation_tokens = ConfirmationTokenGenerator()


# A test copy is forwarded around the newsroom for a few days before the send; a
# month is plenty, and an old link then stops showing drafts that were never sent.
PREVIEW_MAX_AGE_DAYS = 30
_PREVIEW_SALT = "newsletter.tokens.preview"


def issue_preview_token(issue: Issue) -> str:
    """Return a signed token that shows this issue on the web whatever its status."""
    return signing.dumps({"i": issue.pk, "n": issue.newsletter_id}, salt=_PREVIEW_SALT)


def issue_preview_check(token: str) -> Issue | None:
    """Return the issue a valid, unexpired preview token names, else None."""
    try:
        data = signing.loads(token, salt=_PREVIEW_SALT, max_age=PREVIEW_MAX_AGE_DAYS * 86400)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("i"), int):
        return None
    return (
        Issue.objects.select_related("newsletter")
        .filter(pk=data["i"], newsletter_id=data.get("n"))
        .first()
    )
