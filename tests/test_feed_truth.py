"""Feeds tell the truth: impossible dates refused with a line naming the item, control
characters removed, one bad item never stops the rest, and "updated" means changed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command

from articles.models import Article

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def item(n: int, **fields) -> dict:
    return {
        "id": f"item-{n}",
        "url": f"https://portal.example.com/a/{n}.html",
        "title": f"Story {n}",
        "summary": f"Summary {n}.",
        "date_published": "2026-11-25T08:00:00Z",
        **fields,
    }


def run(tmp_path, items: list[dict]) -> tuple[str, list[str]]:
    path = tmp_path / "feed.json"
    path.write_text(
        json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "P", "items": items}),
        encoding="utf-8",
    )
    out, err = StringIO(), StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("import_articles", str(path), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue().strip().splitlines()


def test_items_dated_in_the_future_or_before_1990_are_refused_with_a_line_each(tmp_path):
    out, errors = run(
        tmp_path,
        [
            item(1),
            item(2, title="Tomorrow's news", date_published="2026-11-27T12:30:00Z"),
            item(3, date_published=(NOW + timedelta(hours=23)).isoformat()),  # within a day
            item(4, title="Epoch", date_published="1970-01-01T00:00:00Z"),
        ],
    )
    assert len(errors) == 2
    assert (
        'item 2 ("Tomorrow\'s news"): dated 2026-11-27 12:30 UTC, more than a day in the future'
        in errors[0]
    )
    assert "item 4 ('Epoch'): dated 1970-01-01, before 1990" in errors[1]
    assert sorted(Article.objects.values_list("feed_guid", flat=True)) == ["item-1", "item-3"]
    assert "2 created, 0 updated, 0 unchanged, 2 refused." in out


def test_nul_and_other_control_characters_are_removed_from_every_field(tmp_path):
    run(
        tmp_path,
        [
            item(
                1,
                title="Rail\x00 link\x07 opens",
                summary="Trains\x1b run\x00 daily.\nMore soon.",
                tags=["rail\x00way", "Kazakh\x0bstan"],
                _belt_and_road={"category": "Trans\x00port", "source": "Xinhua\x08"},
                content_html="<p>Body\x00 text\x7f</p>",
            )
        ],
    )
    article = Article.objects.get()
    assert article.title == "Rail link opens"
    assert article.abstract == "Trains run daily. More soon."
    assert article.body == "<p>Body text</p>"
    assert article.category.name == "Transport"
    assert article.source == "Xinhua"
    assert sorted(k.name for k in article.keywords.all()) == ["Kazakhstan", "railway"]
    for value in (article.title, article.abstract, article.body, article.source):
        assert not any(ord(c) < 32 and c not in "\t\n\r" for c in value)


def test_a_bad_item_never_stops_the_items_after_it(tmp_path):
    _out, errors = run(
        tmp_path,
        [
            item(1),
            item(2, title="Odd related", _belt_and_road={"related": 5}),  # not a list
            item(3, date_published=12345),  # not a date string
            item(4),
        ],
    )
    assert len(errors) == 2
    assert "item 2 ('Odd related')" in errors[0]
    assert "item 3 ('Story 3'): no valid date_published" in errors[1]
    assert sorted(Article.objects.values_list("feed_guid", flat=True)) == ["item-1", "item-4"]


def test_updated_counts_only_items_that_really_changed(tmp_path):
    items = [item(1), item(2), item(3)]
    out, _ = run(tmp_path, items)
    assert "3 created, 0 updated, 0 unchanged" in out
    stamp = Article.objects.get(feed_guid="item-1").updated_at
    out, _ = run(tmp_path, items)
    assert "0 created, 0 updated, 3 unchanged" in out
    assert Article.objects.get(feed_guid="item-1").updated_at == stamp
    items[1] = item(2, summary="A corrected summary.")
    items[2] = item(3, tags=["new keyword"])
    out, _ = run(tmp_path, items)
    assert "0 created, 2 updated, 1 unchanged" in out
    assert Article.objects.get(feed_guid="item-2").abstract == "A corrected summary."
