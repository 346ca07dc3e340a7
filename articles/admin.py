from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _

from articles.feeds import sanitise_html
from articles.languages import other_languages_field
from articles.models import Article, Category, CategoryName, Keyword
from articles.services import translation_root


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
    list_display = ["name", "slug", "position", "article_count"]
    list_editable = ["position"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [CategoryNameInline]

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
