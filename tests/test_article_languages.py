"""Articles know their language and their counterparts in other languages (issue 14)."""

from __future__ import annotations

import json

import pytest

from articles.feeds import parse_feed
from articles.models import Article
from articles.services import articles_import, articles_import_feed
from tests.factories import ArticleFactory
from tests.reader_steps import admin_client  # noqa: F401

pytestmark = pytest.mark.django_db

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{lang}">
<title>Portal</title><id>urn:portal:{lang}</id><updated>2026-11-25T08:00:00Z</updated>
<entry>
  <title>{title}</title>
  <id>urn:story:{lang}:gwadar</id>
  <link rel="alternate" href="{url}"/>
  <link rel="alternate" hreflang="{other}" href="{other_url}"/>
  <updated>2026-11-25T08:00:00Z</updated>
  <category term="Ports"/>
  <summary>{summary}</summary>
</entry>
</feed>
"""

EN_URL = "https://portal.example.com/en/gwadar.html"
ZH_URL = "https://portal.example.com/zh/gwadar.html"


def atom(lang: str) -> bytes:
    english = lang == "en"
    return ATOM.format(
        lang=lang,
        title="Gwadar port opens a new berth" if english else "瓜达尔港新泊位启用",
        url=EN_URL if english else ZH_URL,
        other="zh-Hans" if english else "en",
        other_url=ZH_URL if english else EN_URL,
        summary="A new berth opened." if english else "新泊位正式启用。",
    ).encode()


def json_feed(items: list[dict], language: str | None = None) -> bytes:
    document = {"version": "https://jsonfeed.org/version/1.1", "title": "Portal", "items": items}
    if language:
        document["language"] = language
    return json.dumps(document, ensure_ascii=False).encode()


def item(n: int, title: str, **extra) -> dict:
    return {
        "id": f"item-{n}",
        "url": f"https://portal.example.com/{n}.html",
        "title": title,
        "date_published": "2026-11-25T08:00:00Z",
        "summary": "Summary.",
        **extra,
    }


def test_an_atom_entry_takes_its_language_from_xml_lang_and_pairs_by_hreflang():
    articles_import(feed=parse_feed(atom("en"), name="en.xml"))
    articles_import(feed=parse_feed(atom("zh-Hans"), name="zh.xml"))
    english = Article.objects.get(url=EN_URL)
    chinese = Article.objects.get(url=ZH_URL)
    assert (english.language, chinese.language) == ("en", "zh-hans")
    assert chinese.translation_of == english and english.translation_of is None


def test_a_shared_id_in_json_feeds_pairs_the_versions_of_a_story():
    articles_import(
        feed=parse_feed(
            json_feed([item(1, "Rail freight record", _belt_and_road={"translation_key": "s-1"})]),
            name="en.json",
        )
    )
    articles_import(
        feed=parse_feed(
            json_feed(
                [item(2, "中欧班列货运创纪录", _belt_and_road={"translation_key": "s-1"})],
                language="zh-CN",
            ),
            name="zh.json",
        )
    )
    chinese = Article.objects.get(title="中欧班列货运创纪录")
    assert chinese.language == "zh-hans"
    assert chinese.translation_of.title == "Rail freight record"


def test_the_feed_sources_language_applies_unless_an_entry_says_otherwise(tmp_path):
    path = tmp_path / "source.json"
    path.write_bytes(
        json_feed([item(1, "丝路电商新进展"), item(2, "An English piece", language="en")])
    )
    result = articles_import_feed(source=str(path), language="zh-hans")
    assert result.created == 2
    languages = dict(Article.objects.values_list("title", "language"))
    assert languages == {"丝路电商新进展": "zh-hans", "An English piece": "en"}


def test_two_versions_in_one_language_are_never_linked():
    first = ArticleFactory(title="Original", language="en")
    ArticleFactory(title="版本一", language="zh-hans", translation_of=first)
    from django.core.exceptions import ValidationError

    from articles.services import article_link_translation

    second = ArticleFactory(title="版本二", language="zh-hans")
    with pytest.raises(ValidationError, match="already this story's zh-hans version"):
        article_link_translation(article=second, original=first)
    second.refresh_from_db()
    assert second.translation_of is None


def test_an_editor_pairs_articles_in_admin_with_search_as_you_type(admin_client):
    english = ArticleFactory(title="Gwadar port opens a new berth", language="en")
    chinese = ArticleFactory(title="瓜达尔港新泊位启用", language="zh-hans")
    found = admin_client.get(
        "/admin/autocomplete/",
        {
            "term": "Gwadar",
            "app_label": "articles",
            "model_name": "article",
            "field_name": "translation_of",
        },
    ).json()
    assert [r["text"] for r in found["results"]] == ["Gwadar port opens a new berth"]
    page = admin_client.get(f"/admin/articles/article/{chinese.pk}/change/").content.decode()
    assert "admin-autocomplete" in page and 'name="translation_of"' in page
    form = {
        "title": chinese.title,
        "slug": "gwadar-zh",
        "url": chinese.url,
        "status": "published",
        "category": chinese.category_id,
        "priority": 0,
        "published_at_0": chinese.published_at.strftime("%Y-%m-%d"),
        "published_at_1": chinese.published_at.strftime("%H:%M:%S"),
        "language": "zh-hans",
        "translation_of": english.pk,
    }
    response = admin_client.post(f"/admin/articles/article/{chinese.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    chinese.refresh_from_db()
    assert chinese.translation_of == english
    page = admin_client.get(f"/admin/articles/article/{english.pk}/change/").content.decode()
    assert "瓜达尔港新泊位启用</a> [zh-hans]" in page
