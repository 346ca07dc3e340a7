"""The ESP batch path: one API call carries a whole variant's readers.

Anymail sends one message to many recipients as separate, personalised copies when
`merge_data` is set. We use it where the ESP accepts inline content (no stored
template) with per-recipient merge fields in the body, per-recipient headers
(`merge_headers`, for each reader's List-Unsubscribe) and per-recipient metadata
(`merge_metadata`, which the tracking webhooks hand back):

| ESP       | merge field in the body | recipients per call                         |
|-----------|-------------------------|---------------------------------------------|
| Mailgun   | %recipient.KEY%         | 1,000 (Mailgun's batch-sending limit)       |
| SendGrid  | -KEY- (substitutions)   | 1,000 (personalizations per request)        |
| SparkPost | {{KEY}}                 | 1,000 (our cap; SparkPost states no limit)  |
| Mailjet   | {{var:KEY}}             | 50 (messages per Send API v3.1 call)        |

Not on this path, from anymail's source: Amazon SES and Postmark take merge_data
only with a stored template; Resend and MailerSend have no merge fields for inline
content; Brevo's message versions take params only with a template. Those backends,
and SMTP, go one message per reader (per_message.py, smtp.py).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from anymail.exceptions import AnymailError
from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend

from newsletter.digest import fill_placeholders
from newsletter.emails import RenderedEmail
from newsletter.links import PLACEHOLDERS, UNSUBSCRIBE_URL
from newsletter.models import Issue
from newsletter.sending.claim import Row
from newsletter.sending.errors import describe, is_permanent
from newsletter.sending.journal import journal_note
from newsletter.sending.messages import BatchRecipient, digest_batch_message
from newsletter.sending.ratelimit import throttle
from newsletter.sending.render import RenderedVariant
from newsletter.sending.ways_out.base import BatchInterrupted, Outcome, WayOut


@dataclass(frozen=True)
class BatchProfile:
    esp: str
    limit: int  # recipients per API call
    field_format: str  # how a merge field is written in the body, "{}" is the key
    key_format: str = "{}"  # how its key is written in merge_data
    esp_extra: dict = field(default_factory=dict)
    max_tags: int = 10  # Mailjet and SparkPost take one tag: the issue's is kept

    def merge_keys(self) -> dict[str, str]:
        """Return {placeholder: merge_data key}: %%UNSUBSCRIBE_URL%% -> unsubscribe_token."""
        return {p: self.key_format.format(_key(p)) for p in PLACEHOLDERS}

    def with_fields(
        self, rendered: RenderedEmail, around: dict[str, tuple[str, str]]
    ) -> RenderedEmail:
        """Return the variant with each link's token as the ESP's merge field.

        `around` gives the fixed parts of each link (ReaderLinks.around).
        """
        fields = {
            p: around[p][0] + self.field_format.format(_key(p)) + around[p][1] for p in PLACEHOLDERS
        }
        return replace(  # keeps the subject and From name (issue 14)
            rendered,
            text=fill_placeholders(rendered.text, fields),
            html=fill_placeholders(rendered.html, fields),
        )


def _key(placeholder: str) -> str:
    return placeholder.strip("%").lower().replace("_url", "_token")


BATCH_PROFILES: dict[str, BatchProfile] = {
    "anymail.backends.mailgun.EmailBackend": BatchProfile("Mailgun", 1000, "%recipient.{}%"),
    "anymail.backends.sendgrid.EmailBackend": BatchProfile("SendGrid", 1000, "-{}-", "-{}-"),
    "anymail.backends.sparkpost.EmailBackend": BatchProfile(
        "SparkPost", 1000, "{{{{{}}}}}", max_tags=1
    ),
    "anymail.backends.mailjet.EmailBackend": BatchProfile(
        "Mailjet",
        50,
        "{{{{var:{}}}}}",
        esp_extra={"Globals": {"TemplateLanguage": True}},
        max_tags=1,
    ),
}


def batch_profile(connection: BaseEmailBackend) -> BatchProfile | None:
    """Return the batch profile of this backend (or a subclass), None for the per-message path."""
    if settings.NEWSLETTER_ESP_BATCH == "off":
        return None
    for cls in type(connection).__mro__:
        profile = BATCH_PROFILES.get(f"{cls.__module__}.{cls.__qualname__}")
        if profile is not None:
            limit = min(profile.limit, settings.NEWSLETTER_ESP_BATCH_LIMIT or profile.limit)
            return dataclasses.replace(profile, limit=limit)
    return None


def _refused(status) -> bool:
    return status is not None and status.status in ("rejected", "invalid")


class EspBatch(WayOut):
    """A variant's readers in calls of up to the ESP's limit, personalised by the ESP."""

    def __init__(
        self,
        connection: BaseEmailBackend,
        *,
        issue: Issue,
        token: uuid.UUID,
        profile: BatchProfile,
    ) -> None:
        super().__init__(connection, issue=issue, token=token)
        self.profile = profile

    def send(self, variant: RenderedVariant, recipients: Sequence[Row]) -> list[Outcome]:
        """Send one variant to its recipients in calls of up to the ESP's limit.

        A call the ESP refuses outright for a reason of the message (a 4xx naming a bad
        address, say) is split in halves and each half sent again, down to the one
        recipient it is about, which fails alone: one bad address costs about
        2·log2(limit) extra calls, not the batch. A transient error stops the batch with
        BatchInterrupted, carrying what was settled, for the caller to retry the rest.
        """
        profile, around = self.profile, self.links.around
        content = profile.with_fields(variant.rendered, around)
        merge_key = profile.merge_keys()
        prefix, suffix = around[UNSUBSCRIBE_URL]
        batch = []
        for row in recipients:
            tokens = self.links.tokens(row.subscriber)
            batch.append(
                BatchRecipient(
                    row.pk, row.subscriber, tokens, prefix + tokens[UNSUBSCRIBE_URL] + suffix
                )
            )
        outcomes: list[Outcome] = []
        pending = [batch[i : i + profile.limit] for i in range(0, len(batch), profile.limit)]
        pending.reverse()
        while pending:
            chunk = pending.pop()
            message = digest_batch_message(
                content,
                issue=self.issue,
                recipients=chunk,
                merge_key=merge_key,
                esp_extra=profile.esp_extra,
                max_tags=profile.max_tags,
            )
            throttle(len(chunk))
            try:
                self.connection.send_messages([message])
            except AnymailError as exc:
                if not is_permanent(exc):
                    raise BatchInterrupted(outcomes, exc) from exc
                if len(chunk) == 1:
                    outcomes.append(Outcome(chunk[0].delivery_id, error=describe(exc)))
                else:
                    half = len(chunk) // 2
                    pending.extend([chunk[half:], chunk[:half]])
                continue
            except Exception as exc:
                raise BatchInterrupted(outcomes, exc) from exc
            statuses = message.anymail_status.recipients
            accepted: dict[int, str] = {}
            for r in chunk:
                status = statuses.get(r.subscriber.email)
                if _refused(status):
                    outcomes.append(
                        Outcome(r.delivery_id, error=f"refused by {profile.esp}: {status.status}")
                    )
                else:
                    mid = str(status.message_id) if status and status.message_id else ""
                    accepted[r.delivery_id] = mid
                    outcomes.append(Outcome(r.delivery_id, message_id=mid))
            journal_note(self.token, accepted)
        return outcomes
