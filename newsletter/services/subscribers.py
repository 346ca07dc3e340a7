"""Writes for readers: signing up, confirming, preferences, pausing, unsubscribing, erasing.

Every email a reader gets from here is sent by a Celery task after the transaction
commits, so the signup page answers in the same time whatever the address's state
(no timing oracle), and a slow mail server never holds a web request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.crypto import get_random_string

from articles.languages import reader_language
from articles.models import Category
from config.celery import enqueue
from newsletter import emails
from newsletter.abuse import email_allowance, email_allowance_reset
from newsletter.links import confirm_url, one_click_headers, preferences_url, unsubscribe_url
from newsletter.models import (
    ConsentRecord,
    ConsentText,
    Delivery,
    LeavingReason,
    Newsletter,
    PendingSignup,
    Subscriber,
)
from newsletter.selectors.subscribers import (
    categories_offered,
    consent_text_agreed,
    consent_text_current,
    latest_issue_url,
    subscriber_by_email,
)
from newsletter.suppression import is_suppressed, normalise_email, suppress
from newsletter.tokens import confirmation_tokens

logger = logging.getLogger(__name__)

# The tasks this module enqueues (config.celery.enqueue: tasks import services, not back).
SEND_READER_EMAIL = "newsletter.tasks.send_reader_email"
PROCESS_SIGNUP = "newsletter.tasks.process_signup"

# The reader emails, each templates/emails/<name>.{subject.txt,txt,html}.
CONFIRM = "confirm"
CONFIRM_EMAIL_CHANGE = "confirm_email_change"
ALREADY_SUBSCRIBED = "already_subscribed"
WELCOME = "welcome"
EMAIL_CHANGED = "email_changed"
READER_EMAILS = (CONFIRM, CONFIRM_EMAIL_CHANGE, ALREADY_SUBSCRIBED, WELCOME, EMAIL_CHANGED)


class SignupOutcome(StrEnum):
    """What subscriber_signup did. No page may show it: that would tell who is subscribed."""

    SUPPRESSED = "suppressed"  # an erased or blocked address: nothing happened
    CREATED = "created"  # a new pending reader, asked to confirm
    # The address was on the list already, with this status; the details typed wait.
    PENDING = Subscriber.Status.PENDING.value
    ACTIVE = Subscriber.Status.ACTIVE.value
    UNSUBSCRIBED = Subscriber.Status.UNSUBSCRIBED.value
    BOUNCED = Subscriber.Status.BOUNCED.value
    COMPLAINED = Subscriber.Status.COMPLAINED.value
    ERASED = Subscriber.Status.ERASED.value

    @classmethod
    def of(cls, subscriber: Subscriber, *, created: bool) -> SignupOutcome:
        return cls.CREATED if created else cls(subscriber.status)


class ConfirmOutcome(StrEnum):
    """What pressing a confirmation link's button did; the page says it."""

    CONFIRMED = "confirmed"
    CHANGED = "changed"  # the new address of a change of email is now the reader's
    UPDATED = "updated"  # an active reader took the details of a later signup
    ALREADY = "already"  # nothing left to do
    TAKEN = "taken"  # the new address is another subscription's, or may not be mailed


PAUSE_WEEKS = (4, 8)
OUT = (Subscriber.Status.UNSUBSCRIBED, Subscriber.Status.BOUNCED, Subscriber.Status.COMPLAINED)


@dataclass(frozen=True)
class Profile:
    """What a reader tells us about themselves; categories empty means every section."""

    name: str = ""
    organisation: str = ""
    country: str = ""
    categories: tuple[Category, ...] = ()
    language: str = ""  # one of settings.LANGUAGES; blank keeps the reader's (issue 14)


def _queue_email(
    name: str, subscriber: Subscriber, to: str = "", *, pending_id: int | None = None
) -> None:
    if pending_id:
        enqueue(SEND_READER_EMAIL, name, subscriber.pk, to, pending_id=pending_id)
    else:
        enqueue(SEND_READER_EMAIL, name, subscriber.pk, to)


def _record(subscriber: Subscriber, action: str, **fields) -> ConsentRecord:
    fields["user_agent"] = (fields.get("user_agent") or "")[:300]
    return ConsentRecord.objects.create(subscriber=subscriber, action=action, **fields)


def _apply_profile(subscriber: Subscriber, profile: Profile) -> None:
    subscriber.name = profile.name
    subscriber.organisation = profile.organisation
    subscriber.country = profile.country
    fields = ["name", "organisation", "country", "updated_at"]
    if profile.language:
        subscriber.language = profile.language
        fields.append("language")
    subscriber.save(update_fields=fields)
    subscriber.categories.set(profile.categories)


def consent_text_publish(
    *, newsletter: Newsletter, text: str, privacy_url: str = "", language: str = ""
) -> ConsentText:
    """Make `text` the consent wording new signups agree to, as the next version.

    Earlier versions stay as they are: each consent record points at the exact text
    its reader agreed to. `language` is the one it is written in (the default when
    blank): each language's form shows its own latest text (issue 14).
    """
    with transaction.atomic():
        Newsletter.objects.select_for_update().get(pk=newsletter.pk)  # one version at a time
        last = ConsentText.objects.filter(newsletter=newsletter).order_by("-version").first()
        return ConsentText.objects.create(
            newsletter=newsletter,
            version=(last.version if last else 0) + 1,
            text=text.strip(),
            privacy_url=privacy_url,
            language=language or settings.LANGUAGE_CODE,
        )


def subscriber_signup_request(
    *,
    newsletter: Newsletter,
    email: str,
    profile: Profile,
    consent_text: ConsentText,
    ip: str | None,
    user_agent: str,
    form: str,
) -> None:
    """Take a signup from a public form: enqueue one task, whatever the address's state.

    The request path reads and writes nothing about the address, so a new, pending,
    active, unsubscribed or erased address costs the same queries and one task
    enqueued: the page answers in the same time and tells no one anything
    (bench/signup_timing.py measures it). `subscriber_signup` runs in the task.
    """
    payload = {
        "newsletter_id": newsletter.pk,
        "email": email,
        "name": profile.name,
        "organisation": profile.organisation,
        "country": profile.country,
        "category_ids": [category.pk for category in profile.categories],
        "language": profile.language,
        "consent_text_id": consent_text.pk,
        "ip": ip,
        "user_agent": user_agent[:300],
        "form": form[:100],
    }
    enqueue(PROCESS_SIGNUP, **payload)


def subscriber_signup(
    *,
    newsletter: Newsletter,
    email: str,
    profile: Profile,
    consent_text: ConsentText,
    ip: str | None,
    user_agent: str,
    form: str,
) -> SignupOutcome:
    """Sign an address up; return what happened, which the caller must not show anyone.

    Nothing changes a reader before its owner agrees. A new address becomes a
    pending reader with the details typed (there is no one else's data to change)
    and gets a confirmation. For an address already on the list, whatever its
    status, no stored field changes: the details wait in a PendingSignup, and the
    email to the address carries them (by its id, in the signed link) to be applied
    when its owner presses the button: a confirmation for pending, unsubscribed,
    bounced or complained readers, the "already subscribed" email for active ones. A
    suppressed (erased) address: nothing at all. At most one such email per address
    per interval; when it is spent, nothing is kept either.
    """
    email = normalise_email(email)
    if is_suppressed(newsletter=newsletter, email=email):
        return SignupOutcome.SUPPRESSED
    with transaction.atomic():
        subscriber = subscriber_by_email(newsletter=newsletter, email=email)
        created = subscriber is None
        if created:
            try:
                with transaction.atomic():
                    subscriber = Subscriber.objects.create(
                        newsletter=newsletter,
                        email=email,
                        status=Subscriber.Status.PENDING,
                        source=form[:100],
                    )
            except IntegrityError:  # the same address, submitted at the same moment
                subscriber = subscriber_by_email(newsletter=newsletter, email=email)
                created = False
        assert subscriber is not None
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        if created:
            _apply_profile(subscriber, profile)
            _record(
                subscriber,
                ConsentRecord.Action.SIGNUP,
                ip=ip,
                user_agent=user_agent,
                form=form[:100],
                consent_text=consent_text,
            )
        if not email_allowance(newsletter=newsletter, email=email):
            return SignupOutcome.of(subscriber, created=created)
        pending = None
        if not created:
            pending = PendingSignup.objects.create(
                subscriber=subscriber,
                name=profile.name,
                organisation=profile.organisation,
                country=profile.country,
                category_ids=[category.pk for category in profile.categories],
                language=profile.language,
                consent_text=consent_text,
                ip=ip,
                user_agent=(user_agent or "")[:300],
                form=form[:100],
            )
        pending_id = pending.pk if pending else None
        if subscriber.status == Subscriber.Status.ACTIVE:
            _queue_email(ALREADY_SUBSCRIBED, subscriber, pending_id=pending_id)
        else:
            Subscriber.objects.filter(pk=subscriber.pk).update(
                last_confirmation_sent_at=timezone.now()
            )
            _queue_email(CONFIRM, subscriber, pending_id=pending_id)
        return SignupOutcome.of(subscriber, created=created)


def _pending_profile(pending: PendingSignup, newsletter: Newsletter) -> Profile:
    offered = categories_offered(newsletter=newsletter).filter(pk__in=pending.category_ids)
    return Profile(
        name=pending.name,
        organisation=pending.organisation,
        country=pending.country,
        categories=tuple(offered),
        language=pending.language,
    )


def _pending_differs(subscriber: Subscriber, pending: PendingSignup) -> bool:
    current = (
        subscriber.name,
        subscriber.organisation,
        subscriber.country,
        sorted(subscriber.categories.values_list("pk", flat=True)),
        subscriber.language,
    )
    typed = (
        pending.name,
        pending.organisation,
        pending.country,
        sorted(pending.category_ids),
        pending.language or subscriber.language,
    )
    return current != typed


def subscriber_confirmation_resend(
    *, subscriber: Subscriber, email: str = "", force: bool = False
) -> bool:
    """Send a fresh confirmation link (to `email` for a change of address); False if none went.

    `force` is for an admin who resends on purpose; otherwise the one-email-per-
    interval rule holds here too, so a leaked expired link cannot mail-bomb anyone.
    """
    email = normalise_email(email or subscriber.email)
    changing = email != normalise_email(subscriber.email)
    if subscriber.status == Subscriber.Status.ERASED:
        return False
    if not changing and subscriber.status == Subscriber.Status.ACTIVE:
        return False
    if is_suppressed(newsletter=subscriber.newsletter, email=email):
        return False
    if force:
        email_allowance_reset(newsletter=subscriber.newsletter, email=email)
    if not email_allowance(newsletter=subscriber.newsletter, email=email):
        return False
    with transaction.atomic():
        if changing:
            _queue_email(CONFIRM_EMAIL_CHANGE, subscriber, email)
        else:
            Subscriber.objects.filter(pk=subscriber.pk).update(
                last_confirmation_sent_at=timezone.now()
            )
            _queue_email(CONFIRM, subscriber)
    return True


def subscriber_confirm(
    *,
    subscriber: Subscriber,
    email: str,
    ip: str | None,
    user_agent: str,
    pending_id: int | None = None,
) -> ConfirmOutcome:
    """Confirm a subscription, a change of address, or details given in a signup form.

    Return what happened (ConfirmOutcome). The details of `pending_id` apply only
    now, when the address's owner pressed the button.
    """
    email = normalise_email(email)
    now = timezone.now()
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        if subscriber.status == Subscriber.Status.ERASED:
            return ConfirmOutcome.TAKEN
        pending = (
            PendingSignup.objects.filter(pk=pending_id, subscriber=subscriber).first()
            if pending_id
            else None
        )
        if email != normalise_email(subscriber.email):
            other = subscriber_by_email(newsletter=subscriber.newsletter, email=email)
            if other is not None or is_suppressed(newsletter=subscriber.newsletter, email=email):
                return ConfirmOutcome.TAKEN
            old = subscriber.email
            subscriber.email = email
            subscriber.save(update_fields=["email", "updated_at"])
            _record(
                subscriber,
                ConsentRecord.Action.CHANGE,
                ip=ip,
                user_agent=user_agent,
                method="email-change",
                note="email address changed, confirmed from the new address",
            )
            _queue_email(EMAIL_CHANGED, subscriber, old)
            return ConfirmOutcome.CHANGED
        if subscriber.status == Subscriber.Status.ACTIVE:
            if pending is None:
                return ConfirmOutcome.ALREADY
            _apply_profile(subscriber, _pending_profile(pending, subscriber.newsletter))
            _record(
                subscriber,
                ConsentRecord.Action.CHANGE,
                ip=ip,
                user_agent=user_agent,
                method="link",
                form=pending.form,
                note="details from a signup form, confirmed from the reader's inbox",
            )
            pending.delete()
            return ConfirmOutcome.UPDATED
        if pending is not None:
            # The signup the owner now agrees to: its details and its consent record.
            _apply_profile(subscriber, _pending_profile(pending, subscriber.newsletter))
            record = _record(
                subscriber,
                ConsentRecord.Action.SIGNUP,
                ip=pending.ip,
                user_agent=pending.user_agent,
                form=pending.form,
                consent_text=pending.consent_text,
            )
            ConsentRecord.objects.filter(pk=record.pk).update(at=pending.created_at)
            pending.delete()
        signup = (
            subscriber.consent_records.filter(action=ConsentRecord.Action.SIGNUP)
            .order_by("-at", "-id")
            .first()
        )
        consent_text = consent_text_agreed(subscriber=subscriber)
        subscriber.status = Subscriber.Status.ACTIVE
        subscriber.confirmed_at = now
        subscriber.unsubscribed_at = None
        subscriber.paused_until = None
        subscriber.soft_bounce_count = 0
        subscriber.save()
        _record(
            subscriber,
            ConsentRecord.Action.CONFIRM,
            ip=ip,
            user_agent=user_agent,
            method="link",
            form=signup.form if signup else subscriber.source,
            consent_text=consent_text,
        )
        _queue_email(WELCOME, subscriber)
    return ConfirmOutcome.CONFIRMED


def subscriber_update_profile(
    *, subscriber: Subscriber, profile: Profile, ip: str | None, user_agent: str
) -> list[str]:
    """Save a reader's details and sections; return the names of the fields that changed."""
    before = {
        "name": subscriber.name,
        "organisation": subscriber.organisation,
        "country": subscriber.country,
        "sections": sorted(subscriber.categories.values_list("pk", flat=True)),
        "language": subscriber.language,
    }
    after = {
        "name": profile.name,
        "organisation": profile.organisation,
        "country": profile.country,
        "sections": sorted(c.pk for c in profile.categories),
        "language": profile.language or subscriber.language,
    }
    changed = [key for key in before if before[key] != after[key]]
    if changed:
        with transaction.atomic():
            _apply_profile(subscriber, profile)
            _record(
                subscriber,
                ConsentRecord.Action.CHANGE,
                ip=ip,
                user_agent=user_agent,
                method="preferences",
                note="changed: " + ", ".join(changed),
            )
    return changed


def subscriber_email_change_request(*, subscriber: Subscriber, new_email: str) -> None:
    """Send a confirmation to `new_email`; nothing changes until its owner confirms.

    Whether the address is free, taken or suppressed, the reader is told the same
    thing, so the form cannot be used to find out who else subscribes.
    """
    new_email = normalise_email(new_email)
    if new_email == normalise_email(subscriber.email):
        return
    if subscriber_by_email(newsletter=subscriber.newsletter, email=new_email) is not None:
        return
    subscriber_confirmation_resend(subscriber=subscriber, email=new_email)


def subscriber_pause(
    *,
    subscriber: Subscriber,
    weeks: int,
    ip: str | None,
    user_agent: str,
    now: datetime | None = None,
) -> datetime:
    """Hold the reader's digests for `weeks` (4 or 8); return when they start again."""
    if weeks not in PAUSE_WEEKS:
        raise ValueError(f"a pause is {' or '.join(map(str, PAUSE_WEEKS))} weeks, not {weeks}")
    until = (now or timezone.now()) + timedelta(weeks=weeks)
    with transaction.atomic():
        Subscriber.objects.filter(pk=subscriber.pk).update(paused_until=until)
        _record(
            subscriber,
            ConsentRecord.Action.CHANGE,
            ip=ip,
            user_agent=user_agent,
            method="preferences",
            note=f"paused for {weeks} weeks, until {until:%Y-%m-%d}",
        )
    subscriber.paused_until = until
    return until


def subscriber_resume(*, subscriber: Subscriber, ip: str | None, user_agent: str) -> None:
    """End a pause now: the next issue goes to the reader again."""
    with transaction.atomic():
        if Subscriber.objects.filter(pk=subscriber.pk, paused_until__isnull=False).update(
            paused_until=None
        ):
            _record(
                subscriber,
                ConsentRecord.Action.CHANGE,
                ip=ip,
                user_agent=user_agent,
                method="preferences",
                note="pause ended",
            )
    subscriber.paused_until = None


def subscriber_resubscribe(
    *, subscriber: Subscriber, ip: str | None = None, user_agent: str = ""
) -> bool:
    """Take back an unsubscribe in one step, from the page the reader's own link opened.

    The signed unsubscribe link proves the reader holds the inbox, as a confirmation
    link would, so no second opt-in email is needed. Only an unsubscribed reader comes
    back this way: bounced, complained and erased addresses stay out, and so does a
    suppressed one. The consent record names the text shown beside the button. Return
    whether this call brought the reader back.
    """
    now = timezone.now()
    with transaction.atomic():
        if is_suppressed(newsletter=subscriber.newsletter, email=subscriber.email):
            return False
        changed = Subscriber.objects.filter(
            pk=subscriber.pk, status=Subscriber.Status.UNSUBSCRIBED
        ).update(
            status=Subscriber.Status.ACTIVE,
            unsubscribed_at=None,
            paused_until=None,
            soft_bounce_count=0,
            updated_at=now,
        )
        if changed:
            _record(
                subscriber,
                ConsentRecord.Action.CONFIRM,
                ip=ip,
                user_agent=user_agent,
                method="resubscribe",
                form="unsubscribed-page",
                consent_text=consent_text_current(newsletter=subscriber.newsletter),
                note="resubscribed from the unsubscribe confirmation page",
            )
    subscriber.refresh_from_db()
    return bool(changed)


def subscriber_leaving_reason(
    *, subscriber: Subscriber, reason: str, comment: str = ""
) -> LeavingReason | None:
    """Record why an unsubscribed reader left; a second answer replaces the first.

    Only one answer counts per time of leaving, so a reader pressing "send" twice, or
    changing their mind, is counted once. Return None when the reader is not out.
    """
    if subscriber.status != Subscriber.Status.UNSUBSCRIBED or not (reason or comment.strip()):
        return None
    left_at = subscriber.unsubscribed_at or timezone.now()
    answer, _created = LeavingReason.objects.update_or_create(
        subscriber=subscriber,
        at__gte=left_at,
        defaults={"reason": reason, "comment": comment.strip()[:1000]},
        create_defaults={
            "newsletter": subscriber.newsletter,
            "reason": reason,
            "comment": comment.strip()[:1000],
        },
    )
    return answer


def subscriber_anonymise(*, subscriber: Subscriber, method: str) -> None:
    """Erase what this app keeps about a reader, keeping only a keyed hash of the address.

    The newsletter's part of privacy.services.subscriber_erase, which locks the row and
    erases the other apps' parts in the same transaction. The row stays, anonymised,
    so the deliveries that point at it become anonymous rather than vanish from the
    issue's counts; the suppression hash makes sure no later signup, import or webhook
    brings the address back. Every link in every email sent so far dies with the
    rotated token secret.
    """
    with transaction.atomic():
        suppress(newsletter=subscriber.newsletter, email=subscriber.email, reason="erased")
        if subscriber.status in (Subscriber.Status.ACTIVE, Subscriber.Status.PENDING):
            _record(subscriber, ConsentRecord.Action.WITHDRAW, method=method, note="erased")
        subscriber.consent_records.update(ip=None, user_agent="")
        subscriber.pending_signups.all().delete()
        # Their words go; the reason stays only as a count, linked to no one.
        LeavingReason.objects.filter(subscriber=subscriber).update(comment="", subscriber=None)
        Delivery.objects.filter(subscriber=subscriber).update(last_error="")
        now = timezone.now()
        subscriber.email = f"erased-{subscriber.pk}@erased.invalid"
        subscriber.name = subscriber.organisation = subscriber.country = ""
        subscriber.source = ""
        subscriber.status = Subscriber.Status.ERASED
        subscriber.token_secret = get_random_string(32)
        subscriber.paused_until = None
        subscriber.unsubscribed_at = subscriber.unsubscribed_at or now
        subscriber.save()
        subscriber.categories.clear()


def subscribers_purge_unconfirmed(*, older_than: datetime) -> int:
    """Delete signups that were never confirmed and began before `older_than`.

    Only readers who never confirmed and never received an issue go: a former reader
    who signed up again keeps the history their consent records prove.
    """
    stale = Subscriber.objects.filter(
        status=Subscriber.Status.PENDING,
        confirmed_at__isnull=True,
        created_at__lt=older_than,
        deliveries__isnull=True,
    )
    ids = list(stale.values_list("pk", flat=True))
    # Details waiting for an owner who never pressed the button go once no link can apply them.
    link_life = timedelta(days=settings.NEWSLETTER_CONFIRM_MAX_AGE_DAYS)
    PendingSignup.objects.filter(created_at__lt=timezone.now() - link_life).delete()
    _, per_model = Subscriber.objects.filter(pk__in=ids).delete()
    return per_model.get(Subscriber._meta.label, 0)


# --- The reader emails --------------------------------------------------------------------


def reader_email_send(
    *, name: str, subscriber_id: int, to: str = "", pending_id: int | None = None
) -> bool:
    """Render and send reader email `name`; False when it no longer applies.

    Links and tokens are made now, from the reader's current state, so a queued
    email never carries a link that its own sending has already outdated.
    """
    if name not in READER_EMAILS:
        raise ValueError(f"unknown reader email {name!r}")
    subscriber = Subscriber.objects.select_related("newsletter").filter(pk=subscriber_id).first()
    if subscriber is None or subscriber.status == Subscriber.Status.ERASED:
        return False
    # In the reader's language, links included: the archive link is their edition's
    # (/zh-hans/newsletter/archive/7/), as every word of the email is (issue 14).
    with translation.override(reader_language(subscriber.language)):
        return _reader_email_send(name=name, subscriber=subscriber, to=to, pending_id=pending_id)


def _reader_email_send(
    *, name: str, subscriber: Subscriber, to: str, pending_id: int | None
) -> bool:
    message = _READER_EMAILS[name](subscriber, to=to, pending_id=pending_id)
    if message is None:
        return False
    message.send()
    return True


def _confirm(
    subscriber: Subscriber, *, to: str, pending_id: int | None
) -> EmailMultiAlternatives | None:
    if subscriber.status == Subscriber.Status.ACTIVE:
        return None
    token = confirmation_tokens.make_token(subscriber, pending_id=pending_id)
    return emails.confirm(subscriber, confirm_url=confirm_url(token))


def _confirm_email_change(
    subscriber: Subscriber, *, to: str, pending_id: int | None
) -> EmailMultiAlternatives | None:
    recipient = normalise_email(to)
    token = confirmation_tokens.make_token(subscriber, email=recipient)
    return emails.confirm_email_change(subscriber, to=recipient, confirm_url=confirm_url(token))


def _email_changed(
    subscriber: Subscriber, *, to: str, pending_id: int | None
) -> EmailMultiAlternatives | None:
    return emails.email_changed(subscriber, to=to)


def _subscribed_links(subscriber: Subscriber) -> dict[str, dict[str, str]] | None:
    """Return the links of an email to a subscribed reader and its one-click headers.

    None when the reader is no longer subscribed: the email no longer applies.
    """
    if subscriber.status != Subscriber.Status.ACTIVE:
        return None
    links = {
        "preferences_url": preferences_url(subscriber),
        "unsubscribe_url": unsubscribe_url(subscriber),
        "latest_issue_url": latest_issue_url(newsletter=subscriber.newsletter),
    }
    headers = one_click_headers(
        newsletter=subscriber.newsletter, unsubscribe=links["unsubscribe_url"]
    )
    return {"links": links, "headers": headers}


def _welcome(
    subscriber: Subscriber, *, to: str, pending_id: int | None
) -> EmailMultiAlternatives | None:
    subscribed = _subscribed_links(subscriber)
    return None if subscribed is None else emails.welcome(subscriber, **subscribed)


def _already_subscribed(
    subscriber: Subscriber, *, to: str, pending_id: int | None
) -> EmailMultiAlternatives | None:
    subscribed = _subscribed_links(subscriber)
    if subscribed is None:
        return None
    pending = (
        PendingSignup.objects.filter(pk=pending_id, subscriber=subscriber).first()
        if pending_id
        else None
    )
    apply_url = ""
    if pending is not None and _pending_differs(subscriber, pending):
        # Nothing typed goes in the email: only a link to a page that shows it.
        apply_url = confirm_url(confirmation_tokens.make_token(subscriber, pending_id=pending.pk))
    return emails.already_subscribed(subscriber, **subscribed, apply_url=apply_url)


# Each reader email's own function: whether it still applies, and its links made now.
_READER_EMAILS = {
    CONFIRM: _confirm,
    CONFIRM_EMAIL_CHANGE: _confirm_email_change,
    ALREADY_SUBSCRIBED: _already_subscribed,
    WELCOME: _welcome,
    EMAIL_CHANGED: _email_changed,
}
