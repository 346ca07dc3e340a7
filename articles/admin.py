from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from articles.feeds import sanitise_html
from articles.models import Article, Category, Keyword


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
    list_display = ["name", "slug", "position", "article_count"]
    list_editable = ["position"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}

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
