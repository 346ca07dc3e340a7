from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _


class Category(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    position = models.PositiveIntegerField(
        _("position"), default=0, help_text=_("Sections appear in the digest in this order.")
    )
    description = models.CharField(_("description"), max_length=300, blank=True)
    enabled = models.BooleanField(
        _("on"),
        default=True,
        help_text=_(
            "Offered to readers and given its own section. A category that first appears "
            'in a feed starts off: its articles go under "More news" until an editor '
            "turns it on."
        ),
    )

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("category")
        verbose_name_plural = _("categories")

    def __str__(self) -> str:
        return self.name

    def name_in(self, language: str) -> str:
        """Return the section's name in `language` (prefetch `names` for a list of them)."""
        return next((n.name for n in self.names.all() if n.language == language), self.name)


class CategoryName(models.Model):
    """A section's name in another language (issue 14); the category's own name is the default's."""

    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="names")
    language = models.CharField(_("language"), max_length=10)
    name = models.CharField(_("name"), max_length=100)

    class Meta:
        ordering = ["category", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["category", "language"], name="category_name_language_unique"
            )
        ]
        verbose_name = _("name in another language")
        verbose_name_plural = _("names in other languages")

    def __str__(self) -> str:
        return f"{self.name} [{self.language}]"


class Keyword(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    slug = models.SlugField(_("slug"), max_length=100, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("keyword")
        verbose_name_plural = _("keywords")

    def __str__(self) -> str:
        return self.name


def default_language() -> str:
    return settings.LANGUAGE_CODE


class Article(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PUBLISHED = "published", _("Published")

    title = models.CharField(_("title"), max_length=300)
    slug = models.SlugField(_("slug"), max_length=300)
    url = models.URLField(
        _("link"), max_length=500, help_text=_("The article's canonical page on the portal.")
    )
    source = models.CharField(_("source"), max_length=200, blank=True)
    dateline = models.CharField(_("dateline"), max_length=200, blank=True)
    published_at = models.DateTimeField(_("published"), db_index=True)
    abstract = models.TextField(_("abstract"), blank=True)
    body = models.TextField(_("body"), blank=True, help_text=_("Sanitised HTML."))
    category = models.ForeignKey(
        Category,
        verbose_name=_("category"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="articles",
    )
    keywords = models.ManyToManyField(
        Keyword, verbose_name=_("keywords"), blank=True, related_name="articles"
    )
    related = models.ManyToManyField(
        "self",
        verbose_name=_("related reading"),
        symmetrical=False,
        blank=True,
        help_text=_(
            "The editor's choice of further reading; when empty, articles sharing keywords are used."
        ),
    )
    # The feed's picture for the story (media:content, media:thumbnail, an image
    # enclosure or JSON Feed's image), linked where the portal serves it, never copied.
    image_url = models.URLField(_("image"), max_length=500, blank=True)
    image_width = models.PositiveIntegerField(_("image width"), null=True, blank=True)
    image_height = models.PositiveIntegerField(_("image height"), null=True, blank=True)
    image_bytes = models.PositiveIntegerField(
        _("image size in bytes"), null=True, blank=True, help_text=_("As the feed states it.")
    )
    image_alt = models.CharField(
        _("image description"),
        max_length=300,
        blank=True,
        help_text=_("What the picture shows, for readers who cannot see it. Empty: the title."),
    )
    priority = models.IntegerField(
        _("priority"),
        default=0,
        help_text=_("Higher comes first within its section in the digest."),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PUBLISHED
    )
    feed_guid = models.CharField(
        _("feed GUID"),
        max_length=500,
        unique=True,
        null=True,
        blank=True,
        help_text=_("Set by feed import."),
    )
    # Issue 14: the language the article is written in, and its translations. One
    # article of a story is the original; its translations point to it, so a story's
    # versions are the original and its `translations` (one level, kept so by
    # article_link_translation). `translation_key` is the feed's shared id for a story.
    language = models.CharField(
        _("language"),
        max_length=10,
        default=default_language,
        db_index=True,
        help_text=_("From the feed source, or the feed's own language field."),
    )
    translation_of = models.ForeignKey(
        "self",
        verbose_name=_("translation of"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="translations",
        help_text=_("The original article of this story in another language."),
    )
    translation_key = models.CharField(
        _("translation key"),
        max_length=200,
        blank=True,
        db_index=True,
        help_text=_("An id the feeds share between the versions of one story."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-published_at", "-id"]
        indexes = [models.Index(fields=["status", "published_at"])]
        verbose_name = _("article")
        verbose_name_plural = _("articles")

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return self.url or reverse("admin:articles_article_change", args=[self.pk])

    @property
    def story_id(self) -> int:
        """The id every version of this story shares: its original's."""
        return self.translation_of_id or self.pk


class FeedSource(models.Model):
    """A feed the newsroom's articles come from, fetched on a schedule (Celery beat)."""

    name = models.CharField(_("name"), max_length=100)
    url = models.CharField(
        _("feed URL"),
        max_length=500,
        help_text=_(
            "An http(s) URL of an RSS, Atom or JSON feed; or file:NAME for a file in the "
            "directory FEED_FILE_DIR names."
        ),
    )
    language = models.CharField(_("language"), max_length=10)
    default_category = models.ForeignKey(
        Category,
        verbose_name=_("default section"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("For items the feed gives no category."),
    )
    is_active = models.BooleanField(
        _("on"), default=True, help_text=_("Fetched every FEED_FETCH_INTERVAL_MINUTES.")
    )
    # The validators of the last good response, sent back for a conditional GET.
    etag = models.CharField(max_length=300, blank=True, editable=False)
    last_modified = models.CharField(max_length=100, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("feed source")
        verbose_name_plural = _("feed sources")

    def __str__(self) -> str:
        return self.name


class FeedFetch(models.Model):
    """One fetch of a feed source: what came back and what the import made of it."""

    source = models.ForeignKey(FeedSource, on_delete=models.CASCADE, related_name="fetches")
    at = models.DateTimeField(_("when"), db_index=True)
    status = models.PositiveSmallIntegerField(
        _("HTTP status"), null=True, blank=True, help_text=_("Empty for a file or no answer.")
    )
    new = models.PositiveIntegerField(_("new"), default=0)
    updated = models.PositiveIntegerField(_("updated"), default=0)
    refused = models.PositiveIntegerField(_("refused"), default=0)
    error = models.TextField(_("error"), blank=True)
    refused_items = models.TextField(_("refused items"), blank=True, help_text=_("One per line."))

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("feed fetch")
        verbose_name_plural = _("feed fetches")

    def __str__(self) -> str:
        return f"{self.source} {self.at:%Y-%m-%d %H:%M}"
