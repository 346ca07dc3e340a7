from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from articles.feeds import sanitise_html
from articles.models import Article, Category, FeedFetch, FeedSource, Keyword
from articles.services import SourceError, feed_source_check_url, feed_source_fetch


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
        ]

    def clean_body(self) -> str:
        # Bodies reach the web archive; whatever an editor pastes is cleaned like a feed's.
        return sanitise_html(self.cleaned_data["body"])


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "enabled", "position", "article_count"]
    list_editable = ["enabled", "position"]
    list_filter = ["enabled"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}
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
    list_display = ["title", "category", "published_at", "status", "priority", "source"]
    list_filter = ["status", "category", "published_at", "source"]
    search_fields = ["title", "abstract", "keywords__name", "url"]
    date_hierarchy = "published_at"
    autocomplete_fields = ["keywords", "related", "category"]
    prepopulated_fields = {"slug": ["title"]}
    list_select_related = ["category"]
    readonly_fields = ["feed_guid", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["title", "slug", "url", "status", "category", "priority"]}),
        (_("Text"), {"fields": ["dateline", "abstract", "body", "source", "published_at"]}),
        (_("Keywords and related reading"), {"fields": ["keywords", "related"]}),
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
