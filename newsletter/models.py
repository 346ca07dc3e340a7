from __future__ import annotations

import secrets
import zoneinfo
from datetime import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from articles.models import default_language


def _new_token_secret() -> str:
    return secrets.token_hex(16)


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            _("%(value)s is not a known time zone, e.g. Asia/Shanghai."), params={"value": value}
        ) from None


def _in_language(text: str) -> str:
    return gettext(text) if text else text


class Newsletter(models.Model):
    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    class Approval(models.TextChoices):
        HOLD = "hold", _("Hold for approval: an editor sends or schedules each issue")
        AUTO = "auto", _("Send at the scheduled time unless an editor held it")

    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(_("slug"), unique=True)
    description = models.TextField(_("description"), blank=True)
    from_name = models.CharField(_("from name"), max_length=100)
    from_email = models.EmailField(_("from address"))
    reply_to = models.EmailField(_("reply-to address"), blank=True)
    postal_address = models.TextField(
        _("postal address"), help_text=_("Shown in every email, as anti-spam laws require.")
    )
    send_weekday = models.PositiveSmallIntegerField(
        _("send weekday"), choices=Weekday.choices, default=Weekday.FRIDAY
    )
    send_time = models.TimeField(_("send time"), default=time(9, 0))
    timezone = models.CharField(
        _("time zone"), max_length=64, default="Asia/Shanghai", validators=[validate_timezone]
    )
    categories = models.ManyToManyField(
        "articles.Category",
        verbose_name=_("categories on offer"),
        blank=True,
        related_name="newsletters",
        help_text=_("Leave empty to offer every category."),
    )
    approval_policy = models.CharField(
        _("approval policy"), max_length=10, choices=Approval.choices, default=Approval.HOLD
    )
    review_hours = models.PositiveSmallIntegerField(
        _("review time (hours)"),
        default=2,
        validators=[MaxValueValidator(72)],
        help_text=_(
            'With "send unless held": hours between drafting the issue and sending it, '
            "for editors to curate it or hold it."
        ),
    )

    class MissingTranslation(models.TextChoices):
        ORIGINAL = "original", _("Show it in the original language, marked")
        OMIT = "omit", _("Leave it out of that edition")

    # Issue 14: a story curated into the issue that has no version in an edition's
    # language is shown in its original language (marked) or left out of that edition.
    missing_translation = models.CharField(
        _("story missing in a language"),
        max_length=10,
        choices=MissingTranslation.choices,
        default=MissingTranslation.ORIGINAL,
    )
    section_cap = models.PositiveSmallIntegerField(
        _("articles per section in the email"),
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_(
            "The rest of a longer section is one line linking to the issue online, so no "
            "digest grows past Gmail's clipping size. Each issue may set its own."
        ),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("newsletter")
        verbose_name_plural = _("newsletters")

    def __str__(self) -> str:
        return self.name

    # Issue 14: the newsroom's own words in the active language. Each is looked up in
    # the translation catalogue (newsletter/newsroom_texts.py lists the shipped ones);
    # a text the catalogue does not know is shown as typed.
    @property
    def display_name(self) -> str:
        return _in_language(self.name)

    @property
    def display_from_name(self) -> str:
        return _in_language(self.from_name)

    @property
    def display_description(self) -> str:
        return _in_language(self.description)

    @property
    def display_postal_address(self) -> str:
        return _in_language(self.postal_address)

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class ConsentText(models.Model):
    """One version of the consent wording; a change makes a new row, old ones stay as signed."""

    newsletter = models.ForeignKey(
        Newsletter, on_delete=models.CASCADE, related_name="consent_texts"
    )
    version = models.PositiveIntegerField(_("version"))
    text = models.TextField(_("consent text"))
    privacy_url = models.URLField(_("privacy notice"), blank=True)
    language = models.CharField(
        _("language"),
        max_length=10,
        default=default_language,
        blank=True,
        help_text=_("Readers of this language's pages agree to this text."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["newsletter", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["newsletter", "version"], name="consent_text_version_unique"
            )
        ]
        verbose_name = _("consent text")
        verbose_name_plural = _("consent texts")

    def __str__(self) -> str:
        return f"{self.newsletter} v{self.version}"


class Subscriber(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending confirmation")
        ACTIVE = "active", _("Active")
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
        BOUNCED = "bounced", _("Bounced")
        COMPLAINED = "complained", _("Complained")
        ERASED = "erased", _("Erased")

    newsletter = models.ForeignKey(Newsletter, on_delete=models.PROTECT, related_name="subscribers")
    email = models.EmailField(_("email"), max_length=254)
    name = models.CharField(_("name"), max_length=100, blank=True)
    organisation = models.CharField(_("organisation"), max_length=150, blank=True)
    country = models.CharField(
        _("country"), max_length=2, blank=True, help_text=_("ISO 3166 code.")
    )
    language = models.CharField(_("language"), max_length=10, default=default_language)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.PENDING
    )
    categories = models.ManyToManyField(
        "articles.Category",
        verbose_name=_("categories"),
        blank=True,
        related_name="subscribers",
        help_text=_("Sections this reader receives; none chosen means every section."),
    )
    token_secret = models.CharField(max_length=64, default=_new_token_secret, editable=False)
    source = models.CharField(
        _("source"), max_length=100, blank=True, help_text=_("Form, import or admin.")
    )
    created_at = models.DateTimeField(_("signed up"), auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    confirmed_at = models.DateTimeField(_("confirmed"), null=True, blank=True)
    unsubscribed_at = models.DateTimeField(_("unsubscribed"), null=True, blank=True)
    paused_until = models.DateTimeField(_("paused until"), null=True, blank=True)
    soft_bounce_count = models.PositiveIntegerField(_("soft bounces in a row"), default=0)
    last_confirmation_sent_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"), "newsletter", name="subscriber_email_ci_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["newsletter", "status"]),
            # Admin lists the newest first; list health counts sign-ups and
            # confirmations per week, and readers paused now.
            models.Index(fields=["created_at"], name="subscriber_created_idx"),
            models.Index(fields=["confirmed_at"], name="subscriber_confirmed_idx"),
            models.Index(
                fields=["paused_until"],
                name="subscriber_paused_idx",
                condition=models.Q(paused_until__isnull=False),
            ),
        ]
        verbose_name = _("subscriber")
        verbose_name_plural = _("subscribers")

    def __str__(self) -> str:
        return self.email


class ConsentRecord(models.Model):
    class Action(models.TextChoices):
        SIGNUP = "signup", _("Signed up")
        CONFIRM = "confirm", _("Confirmed")
        IMPORT = "import", _("Imported with prior consent")
        WITHDRAW = "withdraw", _("Withdrew consent")
        CHANGE = "change", _("Changed preferences")

    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.CASCADE, related_name="consent_records"
    )
    action = models.CharField(_("action"), max_length=10, choices=Action.choices)
    at = models.DateTimeField(_("when"), auto_now_add=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    form = models.CharField(_("form"), max_length=100, blank=True)
    consent_text = models.ForeignKey(ConsentText, on_delete=models.PROTECT, null=True, blank=True)
    method = models.CharField(
        _("how"),
        max_length=50,
        blank=True,
        help_text=_("e.g. one-click, link, preferences, admin."),
    )
    note = models.CharField(_("note"), max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        # List health counts withdrawals per week: a reader has a record for each
        # consent step, so at a million readers the table is the largest of them.
        indexes = [models.Index(fields=["action", "at"], name="consentrecord_action_at_idx")]
        verbose_name = _("consent record")
        verbose_name_plural = _("consent records")

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.at:%Y-%m-%d %H:%M}"


class PendingSignup(models.Model):
    """What a signup for an address already on the list typed in, held until its owner agrees.

    A stranger can type anyone's address, so a signup for a known address changes no
    field of that reader: the details wait here, and the link in the email to the
    address (a confirmation, or "you already subscribe") applies them when its owner
    presses the button. Rows older than a confirmation link's lifetime are purged.
    """

    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.CASCADE, related_name="pending_signups"
    )
    name = models.CharField(max_length=100, blank=True)
    organisation = models.CharField(max_length=150, blank=True)
    country = models.CharField(max_length=2, blank=True)
    category_ids = models.JSONField(default=list, blank=True)
    language = models.CharField(max_length=10, blank=True)  # blank keeps the reader's
    consent_text = models.ForeignKey(ConsentText, on_delete=models.PROTECT, null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    form = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("pending signup")
        verbose_name_plural = _("pending signups")

    def __str__(self) -> str:
        return f"pending signup {self.pk} of subscriber {self.subscriber_id}"


class BackgroundJob(models.Model):
    """A long admin job run by a Celery worker: a CSV import or export, with its progress.

    Admin starts one and shows its progress page; the worker updates the counters as
    it goes (live, through the cache) and here when done; the result (the export, or
    the CSV of rows that failed an import) waits in MEDIA_ROOT/jobs/, which no URL
    serves, for an admin to download.
    """

    class Kind(models.TextChoices):
        IMPORT = "import", _("Import readers")
        EXPORT = "export", _("Export readers")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    params = models.JSONField(default=dict, blank=True)
    input_name = models.CharField(_("file"), max_length=255, blank=True)
    input_path = models.CharField(max_length=255, blank=True)
    output_path = models.CharField(max_length=255, blank=True)
    total = models.PositiveIntegerField(_("rows expected"), default=0)
    done = models.PositiveIntegerField(_("rows done"), default=0)
    failed = models.PositiveIntegerField(_("rows failed"), default=0)
    summary = models.TextField(_("summary"), blank=True)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("started"), auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("import or export")
        verbose_name_plural = _("imports and exports")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class LeavingReason(models.Model):
    """Why a reader left, if they said: one of four reasons and optional words of their own.

    Kept apart from the consent records, which are evidence; this is feedback. Erasing
    the reader blanks the words and unlinks the row, so only the reason's count stays.
    """

    class Reason(models.TextChoices):
        TOO_MANY = "too-many", _("Too many emails")
        NOT_RELEVANT = "not-relevant", _("The news is not relevant to me")
        ELSEWHERE = "elsewhere", _("I get this news elsewhere")
        NEVER_ASKED = "never-asked", _("I never signed up for this")

    newsletter = models.ForeignKey(Newsletter, on_delete=models.CASCADE, related_name="+")
    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.SET_NULL, null=True, blank=True, related_name="leaving_reasons"
    )
    # Blank when the reader only wrote in their own words.
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices, blank=True)
    comment = models.TextField(_("in their words"), max_length=1000, blank=True)
    at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("reason for leaving")
        verbose_name_plural = _("reasons for leaving")

    def __str__(self) -> str:
        return self.get_reason_display() or gettext("In their own words")


class Suppression(models.Model):
    """An address that must never be mailed again, kept only as a keyed hash.

    Erasure and hard suppression leave this row behind, so no later import or
    webhook can bring the address back without storing it.
    """

    newsletter = models.ForeignKey(
        Newsletter, on_delete=models.CASCADE, related_name="suppressions"
    )
    email_hash = models.CharField(max_length=64)
    reason = models.CharField(max_length=20)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["newsletter", "email_hash"], name="suppression_unique")
        ]
        verbose_name = _("suppression")
        verbose_name_plural = _("suppressions")

    def __str__(self) -> str:
        return f"{self.reason} {self.email_hash[:12]}…"


class Issue(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        CANCELLED = "cancelled", _("Cancelled")

    newsletter = models.ForeignKey(Newsletter, on_delete=models.PROTECT, related_name="issues")
    number = models.PositiveIntegerField(_("number"))
    title = models.CharField(_("title"), max_length=200)
    headline = models.CharField(
        _("headline (subject line)"),
        max_length=200,
        blank=True,
        help_text=_(
            "The email's subject and the issue's title in the archive and RSS. Empty: the "
            "lead story's title with the newsletter's name and number."
        ),
    )
    preheader = models.CharField(
        _("preheader"),
        max_length=200,
        blank=True,
        help_text=_("The line inboxes show after the subject. Empty: the first stories' titles."),
    )
    section_cap = models.PositiveSmallIntegerField(
        _("articles per section in the email"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_(
            "Empty: the newsletter's. The rest of a section is one line linking to the "
            "issue online."
        ),
    )
    week = models.CharField(_("week"), max_length=8, help_text=_("ISO week, e.g. 2026-W48."))
    window_start = models.DateTimeField(_("articles from"))
    window_end = models.DateTimeField(_("articles until"))
    editor_note = models.TextField(_("editor's note"), blank=True, help_text=_("Markdown."))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.DRAFT
    )
    scheduled_at = models.DateTimeField(_("scheduled for"), null=True, blank=True)
    send_started_at = models.DateTimeField(_("sending started"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    # When a Publisher last pressed "Retry failed"; the give-up budget of rate-limited
    # rows (NEWSLETTER_GIVE_UP_AFTER) counts from here or the send's start, the later.
    resent_at = models.DateTimeField(_("failed rows sent again"), null=True, blank=True)
    # The fan-out writes the ledger in chunks of readers by id (sending/fanout.py): the
    # highest reader id written, when it last moved (beat's watchdog resumes one that
    # stopped) and when the last chunk was written. The issue is marked sent only after.
    fanout_cursor = models.BigIntegerField(_("ledger written up to reader"), default=0)
    fanout_moved_at = models.DateTimeField(_("ledger last written"), null=True, blank=True)
    fanout_done_at = models.DateTimeField(_("ledger complete"), null=True, blank=True)
    recipients_count = models.PositiveIntegerField(_("recipients"), default=0)
    sent_count = models.PositiveIntegerField(_("sent"), default=0)
    failed_count = models.PositiveIntegerField(_("failed"), default=0)
    skipped_count = models.PositiveIntegerField(_("skipped"), default=0)
    # Recipients of calls interrupted in flight (InterruptedCall), kept as a counter so
    # the report reads it without a query.
    possible_duplicates = models.PositiveIntegerField(_("possible duplicates"), default=0)
    utm_source = models.CharField(_("utm_source"), max_length=100, blank=True)
    utm_medium = models.CharField(_("utm_medium"), max_length=100, blank=True)
    utm_campaign = models.CharField(_("utm_campaign"), max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["newsletter", "number"], name="issue_number_unique")
        ]
        indexes = [models.Index(fields=["newsletter", "week"])]
        verbose_name = _("issue")
        verbose_name_plural = _("issues")
        permissions = [("send_issue", _("Can schedule, send or cancel an issue"))]

    def __str__(self) -> str:
        return f"{self.newsletter.name} No. {self.number} ({self.week})"


class IssueText(models.Model):
    """An edition's own words for an issue: headline, preheader and editor's note in one language.

    The issue's own fields are the default language's; a row here overrides them for
    another language, and a blank field falls back to the default language's text.
    Kept apart from Issue so a language added in settings needs no migration.
    """

    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="texts")
    language = models.CharField(_("language"), max_length=10)
    headline = models.CharField(_("headline"), max_length=200, blank=True)
    preheader = models.CharField(_("preheader"), max_length=200, blank=True)
    editor_note = models.TextField(_("editor's note"), blank=True, help_text=_("Markdown."))

    class Meta:
        ordering = ["issue", "language"]
        constraints = [
            models.UniqueConstraint(fields=["issue", "language"], name="issue_text_language_unique")
        ]
        verbose_name = _("edition text")
        verbose_name_plural = _("edition texts")

    def __str__(self) -> str:
        return f"{self.issue} [{self.language}]"


class EmptyWeek(models.Model):
    """A week whose scheduled compile found no new article: the editors were told once."""

    newsletter = models.ForeignKey(Newsletter, on_delete=models.CASCADE, related_name="empty_weeks")
    week = models.CharField(_("week"), max_length=8)
    noticed_at = models.DateTimeField(_("noticed"), auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["newsletter", "week"], name="empty_week_unique")
        ]
        verbose_name = _("empty week")
        verbose_name_plural = _("empty weeks")

    def __str__(self) -> str:
        return f"{self.newsletter} {self.week}"


class IssueItem(models.Model):
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="items")
    article = models.ForeignKey(
        "articles.Article", on_delete=models.PROTECT, related_name="issue_items"
    )
    section = models.ForeignKey(
        "articles.Category", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    position = models.PositiveIntegerField(_("position"), default=0)
    abstract_override = models.TextField(_("abstract override"), blank=True)
    pinned = models.BooleanField(
        _("pinned"), default=False, help_text=_("Kept first in its section.")
    )
    removed = models.BooleanField(
        _("removed"),
        default=False,
        help_text=_("Left out of the issue; re-compiling does not add it back."),
    )

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["issue", "article"], name="issue_item_unique")
        ]
        verbose_name = _("issue item")
        verbose_name_plural = _("issue items")

    def __str__(self) -> str:
        return str(self.article)

    @property
    def abstract(self) -> str:
        return self.abstract_override or self.article.abstract


class Delivery(models.Model):
    """The ledger: one row per issue and reader, the only record that an email went out."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        SKIPPED = "skipped", _("Skipped")
        FAILED = "failed", _("Failed")
        BOUNCED = "bounced", _("Bounced")
        COMPLAINED = "complained", _("Complained")

    # Every index here is written for each row at the snapshot and again at its claim
    # and its settling, so the ledger keeps only those that reads need: the issue's
    # rows are found through the unique (issue, subscriber) and the claim index.
    issue = models.ForeignKey(
        Issue, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    subscriber = models.ForeignKey(Subscriber, on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    variant = models.CharField(
        _("variant"), max_length=200, blank=True, help_text=_("Sections sent, by category id.")
    )
    esp_message_id = models.CharField(_("ESP message id"), max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    opened_at = models.DateTimeField(_("first opened"), null=True, blank=True)
    open_count = models.PositiveIntegerField(_("opens"), default=0)
    clicked_at = models.DateTimeField(_("first clicked"), null=True, blank=True)
    click_count = models.PositiveIntegerField(_("clicks"), default=0)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["issue", "subscriber"], name="delivery_issue_subscriber_unique"
            ),
        ]
        indexes = [
            # The batch claim reads one keyset range of an issue's queued rows: with id
            # in the index the range is the index condition, whatever the statistics.
            models.Index(fields=["issue", "status", "id"], name="delivery_issue_status_id_idx"),
            # Webhooks look rows up by ESP message id; rows not yet sent have none and
            # stay out of the index.
            models.Index(
                fields=["esp_message_id"],
                name="delivery_esp_message_id_idx",
                condition=~models.Q(esp_message_id=""),
            ),
        ]
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")

    def __str__(self) -> str:
        return f"{self.issue} → {self.subscriber_id}"


class TrackingEvent(models.Model):
    """One event an ESP reported through its webhook; duplicates are dropped by ESP event id."""

    class BounceKind(models.TextChoices):
        HARD = "hard", _("Hard")
        SOFT = "soft", _("Soft")

    class Outcome(models.TextChoices):
        BOUNCED = "bounced", _("Reader bounced")
        SOFT_BOUNCE = "soft-bounce", _("Soft bounce counted")
        COMPLAINED = "complained", _("Reader complained")
        UNSUBSCRIBED = "unsubscribed", _("Reader unsubscribed")
        UNMATCHED = "unmatched", _("No delivery or reader found")
        ERASED = "erased", _("Reader erased: nothing kept")

    esp = models.CharField(_("ESP"), max_length=30)
    event_type = models.CharField(_("event"), max_length=30)
    esp_event_id = models.CharField(
        _("ESP event id"), max_length=255, null=True, blank=True, unique=True
    )
    message_id = models.CharField(_("ESP message id"), max_length=255, blank=True, db_index=True)
    delivery = models.ForeignKey(
        Delivery, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    timestamp = models.DateTimeField(_("when"), null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    reject_reason = models.CharField(max_length=30, blank=True)
    description = models.TextField(blank=True)
    mta_response = models.TextField(blank=True)
    click_url = models.URLField(max_length=1000, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    bounce_kind = models.CharField(
        _("bounce"), max_length=4, choices=BounceKind.choices, blank=True
    )
    outcome = models.CharField(
        _("outcome"),
        max_length=20,
        choices=Outcome.choices,
        blank=True,
        help_text=_("What this event did to the reader, if anything."),
    )

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["event_type", "received_at"]),
            models.Index(fields=["outcome", "received_at"]),
            # The sweep looks only for events no task has processed yet.
            models.Index(
                fields=["received_at"],
                condition=models.Q(processed_at__isnull=True),
                name="trackingevent_unprocessed",
            ),
            # The bulk applier takes unprocessed events in id order; only those are indexed.
            models.Index(
                fields=["id"],
                condition=models.Q(processed_at__isnull=True),
                name="trackingevent_to_apply",
            ),
        ]
        verbose_name = _("tracking event")
        verbose_name_plural = _("tracking events")

    def __str__(self) -> str:
        return f"{self.esp} {self.event_type} {self.message_id}"


class IssueTally(models.Model):
    """One issue's report figures, kept by the event applier so reports never scan the ledger.

    Built from the ledger once (the first report after the issue finished sending, or
    `issue_tally_rebuild`), then every applied event adds to it. `hourly` holds first
    opens and clicks per UTC hour ("2026-11-27T09": [opened, clicked]) for the chart;
    whole-hour zones (Asia/Shanghai, the Americas) group it into their own days.
    `links` holds [clicks, readers] per canonical URL, or "@unsubscribe" and the like
    for our own pages, whose paths carry a reader's token.
    """

    issue = models.OneToOneField(
        Issue, on_delete=models.CASCADE, primary_key=True, related_name="tally"
    )
    recipients = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    delivered = models.IntegerField(default=0)
    bounced = models.IntegerField(default=0)
    hard_bounces = models.IntegerField(default=0)
    soft_bounces = models.IntegerField(default=0)
    complained = models.IntegerField(default=0)
    complaints = models.IntegerField(
        default=0, help_text=_("Deliveries with a complaint event, for the complaint rate.")
    )
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    in_progress = models.PositiveIntegerField(default=0)
    opened = models.IntegerField(default=0)
    clicked = models.IntegerField(default=0)
    opens = models.BigIntegerField(default=0)
    clicks = models.BigIntegerField(default=0)
    hourly = models.JSONField(default=dict, blank=True)
    links = models.JSONField(
        default=dict, blank=True, help_text=_("Clicks and readers per link (canonical URL).")
    )
    built_at = models.DateTimeField()

    class Meta:
        verbose_name = _("issue tally")
        verbose_name_plural = _("issue tallies")

    def __str__(self) -> str:
        return f"tally of issue {self.issue_id}"


class WeeklyTally(models.Model):
    """Readers one newsletter lost to bounces and complaints in one week, for list health.

    Kept by the event applier: each applied event whose outcome bounced a reader or
    took a complaint adds one here, in the week (from Monday, in the newsroom's zone)
    the event arrived. The report reads twelve rows instead of grouping every
    tracking event of the newsletter by week through its deliveries.
    """

    newsletter = models.ForeignKey(
        Newsletter, on_delete=models.CASCADE, related_name="weekly_tallies"
    )
    week = models.DateField(help_text=_("The Monday the week starts on."))
    bounced = models.PositiveIntegerField(default=0)
    complained = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["newsletter", "week"], name="weeklytally_newsletter_week_unique"
            )
        ]
        verbose_name = _("weekly tally")
        verbose_name_plural = _("weekly tallies")

    def __str__(self) -> str:
        return f"week of {self.week} ({self.newsletter_id})"


class Repermission(models.Model):
    """A sunset request: a reader who stopped opening was asked whether to keep sending.

    No answer (a click on the button, or any open or click) within the grace period
    pauses the reader; an answer at any time, even after the pause, resumes them.
    """

    class Outcome(models.TextChoices):
        ASKED = "asked", _("Asked, no answer yet")
        KEPT = "kept", _("Answered: keep sending")
        ENGAGED = "engaged", _("Opened or clicked since: kept")
        PAUSED = "paused", _("No answer: paused")

    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.CASCADE, related_name="repermissions"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(_("email sent"), null=True, blank=True)
    outcome = models.CharField(
        _("outcome"), max_length=10, choices=Outcome.choices, default=Outcome.ASKED
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one open question per reader, however often the sunset task runs.
            models.UniqueConstraint(
                fields=["subscriber"],
                condition=models.Q(outcome="asked"),
                name="repermission_one_open_per_reader",
            )
        ]
        verbose_name = _("re-permission request")
        verbose_name_plural = _("re-permission requests")

    def __str__(self) -> str:
        return f"{self.subscriber_id} {self.outcome}"


class BatchDispatch(models.Model):
    """One keyset range of an issue handed to the broker, and whether a worker took it.

    The broker is not the record of work to do: a Redis restart loses its queue. Every
    enqueue of a range (fan-out, a retry, the watchdog) stamps `dispatched_at` and the
    time the task is due (`due_at`, later for a retry's countdown); a worker starting
    it stamps `claimed_at`. A range due for longer than NEWSLETTER_DISPATCH_GRACE_SECONDS
    and never claimed was lost, and beat's watchdog enqueues it again.
    """

    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="dispatches")
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(_("dispatched"))
    due_at = models.DateTimeField(_("due"))
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    done_at = models.DateTimeField(_("done"), null=True, blank=True)
    dispatch_count = models.PositiveIntegerField(_("times dispatched"), default=1)

    class Meta:
        ordering = ["issue", "first_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["issue", "first_id", "last_id"], name="batchdispatch_range_unique"
            ),
        ]
        indexes = [
            # The watchdog reads only open ranges.
            models.Index(
                fields=["issue", "due_at"],
                name="batchdispatch_open_idx",
                condition=models.Q(done_at__isnull=True),
            ),
        ]
        verbose_name = _("batch dispatch")
        verbose_name_plural = _("batch dispatches")

    def __str__(self) -> str:
        return f"{self.issue_id}: {self.first_id}-{self.last_id}"


class InterruptedCall(models.Model):
    """A call to the ESP (or an SMTP message) whose answer never came: a timeout, or
    the connection dropped after the request went out, or the worker died during it.

    The ESP may have accepted it, so its recipients are sent again and may get a
    second copy: the issue's report sums `recipients` as possible duplicates.
    """

    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="interrupted_calls")
    at = models.DateTimeField(_("when"))
    recipients = models.PositiveIntegerField(_("recipients"))
    error = models.TextField(_("error"), blank=True)

    class Meta:
        ordering = ["-at"]
        verbose_name = _("interrupted call")
        verbose_name_plural = _("interrupted calls")

    def __str__(self) -> str:
        return f"{self.issue_id}: {self.recipients} at {self.at}"
