from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from articles.feeds import sanitise_html
from articles.languages import other_languages_field
from articles.models import Article, Category, CategoryName, FeedFetch, FeedSource, Keyword
from articles.services import (
    SourceError,
    feed_source_check_url,
    feed_source_fetch,
    translation_root,
)


class CategoryNameInline(admin.TabularInline):
    """The section's name in the other languages (issue 14)."""

    model = CategoryName
    extra = 1
    fields = ["language", "name"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "language":
            return other_languages_field(label=db_field.verbose_name)
        return super().formfield_for_dbfield(db_field, request, **kwargs)


class ArticleForm(forms.ModelForm):
    class Meta:
        model = Article
        fields = [
            "title",
            "slug",
            "url",
            "status",
            "category",
            "priority",
            "dateline",
            "abstract",
            "body",
            "source",
            "published_at",
            "keywords",
            "related",
            "language",
            "translation_of",
            "translation_key",
        ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "language" in self.fields:
            current = self.instance.language if self.instance.pk else settings.LANGUAGE_CODE
            choices = list(settings.LANGUAGES)
            if current not in dict(choices):  # imported in a language not (yet) configured
                choices.append((current, current))
            self.fields["language"] = forms.ChoiceField(
                choices=choices, initial=current, label=_("language")
            )

    def clean_body(self) -> str:
        # Bodies reach the web archive; whatever an editor pastes is cleaned like a feed's.
        return sanitise_html(self.cleaned_data["body"])

    def clean(self) -> dict:
        data = super().clean()
        original = data.get("translation_of")
        if original is not None:
            self.instance.language = data.get("language") or self.instance.language
            try:
                # Always the story's original: stories stay one level deep.
                root = translation_root(article=self.instance, original=original)
            except ValidationError as exc:
                self.add_error("translation_of", exc)
            else:
                if self.instance.pk and root.pk == self.instance.pk:
                    self.add_error(
                        "translation_of", _("This article is already that story's original.")
                    )
                else:
                    data["translation_of"] = root
        return data


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "enabled", "position", "article_count"]
    list_editable = ["enabled", "position"]
    list_filter = ["enabled"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [CategoryNameInline]
    actions = ["turn_on"]

    @admin.action(description=_("Turn on: offer to readers, own section"))
    def turn_on(self, request: HttpRequest, queryset) -> None:
        count = queryset.update(enabled=True)
        self.message_user(request, _t("%(n)s categories turned on.") % {"n": count})

    @admin.display(description=_("articles"))
    def article_count(self, obj: Category) -> int:
        return obj.articles.count()


@admin.register(Keyword)
class KeywordAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    form = ArticleForm
    list_display = [
        "title",
        "language",
        "versions",
        "category",
        "published_at",
        "status",
        "priority",
        "source",
    ]
    list_filter = ["status", "language", "category", "published_at", "source"]
    search_fields = ["title", "abstract", "keywords__name", "url"]
    date_hierarchy = "published_at"
    # translation_of: the editor pairs a story's versions by typing part of a title.
    autocomplete_fields = ["keywords", "related", "category", "translation_of"]
    prepopulated_fields = {"slug": ["title"]}
    list_select_related = ["category"]
    readonly_fields = ["feed_guid", "created_at", "updated_at", "translations_list"]
    fieldsets = [
        (None, {"fields": ["title", "slug", "url", "status", "category", "priority"]}),
        (_("Text"), {"fields": ["dateline", "abstract", "body", "source", "published_at"]}),
        (_("Keywords and related reading"), {"fields": ["keywords", "related"]}),
        (
            _("Language and translations"),
            {
                "fields": ["language", "translation_of", "translation_key", "translations_list"],
                "description": _(
                    "Pair this article with the same story in another language: type part of "
                    "its title. Feeds that share an id or link an hreflang alternate are paired "
                    "on import."
                ),
            },
        ),
        (
            _("Picture"),
            {
                "fields": [
                    "image_url",
                    "image_alt",
                    ("image_width", "image_height"),
                    "image_bytes",
                ],
                "description": _(
                    "Shown above the story when it leads its section in the digest. "
                    "Linked where the portal serves it; fill in what it shows for readers who cannot see it."
                ),
            },
        ),
        (
            _("Import"),
            {"fields": ["feed_guid", "created_at", "updated_at"], "classes": ["collapse"]},
        ),
    ]

    def get_queryset(self, request):
        # An aggregate drops Meta.ordering (GROUP BY), so it is named again.
        return (
            super()
            .get_queryset(request)
            .annotate(_versions=Count("translations"))
            .order_by("-published_at", "-id")
        )

    @admin.display(description=_("other languages"), ordering="_versions")
    def versions(self, obj: Article) -> str:
        if obj.translation_of_id:
            return f"→ #{obj.translation_of_id}"
        return str(obj._versions) if obj._versions else "—"

    @admin.display(description=_("versions of this story"))
    def translations_list(self, obj: Article) -> str:
        if not obj.pk:
            return "—"
        root = obj.translation_of or obj
        versions = Article.objects.filter(Q(pk=root.pk) | Q(translation_of=root)).exclude(pk=obj.pk)
        links = format_html_join(
            ", ",
            '<a href="{}">{}</a> [{}]',
            (
                (reverse("admin:articles_article_change", args=[a.pk]), a.title, a.language)
                for a in versions
            ),
        )
        return links or "—"

    def save_model(self, request, obj: Article, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if obj.translation_of_id:
            # Its own translations follow it to the story's original (one level deep).
            Article.objects.filter(translation_of=obj).update(translation_of=obj.translation_of_id)


def _languages() -> list[tuple[str, str]]:
    """Return the site's languages (settings.LANGUAGES when set, else just the default)."""
    if settings.is_overridden("LANGUAGES"):
        return [(code, str(name)) for code, name in settings.LANGUAGES]
    return [(settings.LANGUAGE_CODE, settings.LANGUAGE_CODE)]


class FeedSourceForm(forms.ModelForm):
    language = forms.ChoiceField(label=_("Language"), choices=_languages)

    class Meta:
        model = FeedSource
        fields = ["name", "url", "language", "default_category", "is_active"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        try:
            feed_source_check_url(url)
        except SourceError as exc:
            raise forms.ValidationError(str(exc)) from None
        return url


class FeedFetchInline(admin.TabularInline):
    model = FeedFetch
    extra = 0
    max_num = 0
    can_delete = False
    fields = ["at", "status", "new", "updated", "refused", "error", "refused_items"]
    readonly_fields = fields
    ordering = ["-at", "-id"]
    verbose_name_plural = _("Fetches (newest first)")

    def get_formset(self, request, obj=None, **kwargs):
        self._source = obj  # inline instances are made per request
        return super().get_formset(request, obj, **kwargs)

    def get_queryset(self, request):
        # A fetch every quarter hour makes thousands of rows: show the newest 200.
        source = getattr(self, "_source", None)
        if source is None:
            return super().get_queryset(request).none()
        newest = source.fetches.order_by("-at", "-id").values_list("pk", flat=True)[:200]
        return super().get_queryset(request).filter(pk__in=list(newest))


@admin.register(FeedSource)
class FeedSourceAdmin(admin.ModelAdmin):
    form = FeedSourceForm
    list_display = [
        "name",
        "url",
        "language",
        "default_category",
        "is_active",
        "last_fetch",
        "last_status",
        "last_counts",
        "last_error",
    ]
    list_filter = ["is_active", "language"]
    search_fields = ["name", "url"]
    inlines = [FeedFetchInline]
    actions = ["fetch_now"]
    change_form_template = "admin/articles/feedsource/change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("default_category")

    def _last(self, obj: FeedSource) -> FeedFetch | None:
        if not hasattr(obj, "_last_fetch"):
            obj._last_fetch = obj.fetches.order_by("-at", "-id").first()
        return obj._last_fetch

    @admin.display(description=_("last fetch"))
    def last_fetch(self, obj: FeedSource) -> str:
        last = self._last(obj)
        return timezone.localtime(last.at).strftime("%Y-%m-%d %H:%M") if last else "—"

    @admin.display(description=_("HTTP"))
    def last_status(self, obj: FeedSource) -> str:
        last = self._last(obj)
        return str(last.status) if last and last.status else "—"

    @admin.display(description=_("new / updated / refused"))
    def last_counts(self, obj: FeedSource) -> str:
        last = self._last(obj)
        return f"{last.new} / {last.updated} / {last.refused}" if last else "—"

    @admin.display(description=_("error"))
    def last_error(self, obj: FeedSource) -> str:
        last = self._last(obj)
        return last.error if last and last.error else ""

    @admin.action(description=_("Fetch now"))
    def fetch_now(self, request: HttpRequest, queryset) -> None:
        for source in queryset:
            self._report(request, source, feed_source_fetch(source=source))

    def _report(self, request: HttpRequest, source: FeedSource, fetch: FeedFetch) -> None:
        if fetch.error:
            self.message_user(
                request,
                _t("%(name)s: %(error)s") % {"name": source.name, "error": fetch.error},
                messages.ERROR,
            )
            return
        self.message_user(
            request,
            _t("%(name)s: %(new)s new, %(updated)s updated, %(refused)s refused.")
            % {
                "name": source.name,
                "new": fetch.new,
                "updated": fetch.updated,
                "refused": fetch.refused,
            },
            messages.WARNING if fetch.refused else messages.SUCCESS,
        )

    def get_urls(self):
        return [
            path(
                "<int:pk>/fetch/",
                self.admin_site.admin_view(self.fetch_view),
                name="articles_feedsource_fetch",
            ),
            *super().get_urls(),
        ]

    def fetch_view(self, request: HttpRequest, pk: int):
        source = get_object_or_404(FeedSource, pk=pk)
        if not self.has_change_permission(request, source):
            raise PermissionDenied
        change = reverse("admin:articles_feedsource_change", args=[pk])
        if request.method == "POST":
            self._report(request, source, feed_source_fetch(source=source))
        return HttpResponseRedirect(change)
