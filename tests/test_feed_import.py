"""import_articles reads RSS 2.0, Atom and JSON Feed, idempotently and safely."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import CommandError

from articles.models import Article, Category, Keyword
from tests.feed_steps import import_articles, write

pytestmark = pytest.mark.django_db

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>Portal</title><link>https://portal.example.com/</link><description>d</description>
<item>
  <title>ICBC deepens cooperation with Alipay</title>
  <link>https://portal.example.com/a/icbc-alipay.html</link>
  <guid isPermaLink="false">guid-icbc</guid>
  <pubDate>Fri, 29 May 2026 08:00:00 +0000</pubDate>
  <category domain="section">Finance</category>
  <category>ICBC</category><category>Alipay</category>
  <description>The Industrial and Commercial Bank of China launched a deposit product on Alipay.</description>
  <content:encoded><![CDATA[<p>BEIJING, May 29 (Xinhua) -- ICBC launched a product.</p><script>alert(1)</script><img src="https://img.example.com/x.png" onerror="steal()"><a href="javascript:alert(2)">bad</a><a href="https://portal.example.com/more">more</a>]]></content:encoded>
  <atom:link rel="related" href="https://portal.example.com/a/wisdri.html"/>
</item>
<item>
  <title>WISDRI contracts to build silicon steel project in Russia</title>
  <link>https://portal.example.com/a/wisdri.html</link>
  <guid>guid-wisdri</guid>
  <pubDate>Thu, 28 May 2026 08:00:00 +0000</pubDate>
  <category>Infrastructure</category><category>steel</category>
  <description>&lt;b&gt;WISDRI&lt;/b&gt; signed a contract.</description>
</item>
<item>
  <title>No date here</title>
  <link>https://portal.example.com/a/nodate.html</link>
  <guid>guid-nodate</guid>
</item>
<item>
  <title>Relative link</title>
  <link>ftp://elsewhere/x</link>
  <guid>guid-ftp</guid>
  <pubDate>Thu, 28 May 2026 08:00:00 +0000</pubDate>
</item>
</channel></rss>
"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Portal Atom</title><id>urn:portal</id><updated>2026-05-29T10:00:00Z</updated>
  <entry>
    <title>China-Laos Railway cargo climbs</title>
    <id>urn:atom:laos</id>
    <link rel="alternate" href="https://portal.example.com/a/laos.html"/>
    <published>2026-05-27T09:30:00Z</published><updated>2026-05-27T09:30:00Z</updated>
    <category term="Infrastructure" scheme="https://portal.example.com/section"/>
    <category term="railway"/><category term="ASEAN"/>
    <summary>Cargo on the China-Laos Railway kept growing.</summary>
    <content type="html">&lt;p&gt;KUNMING, May 27 (Xinhua) -- Cargo grew.&lt;/p&gt;</content>
  </entry>
</feed>
"""

JSON_FEED = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "Portal JSON",
    "items": [
        {
            "id": "json-solar",
            "url": "https://portal.example.com/a/solar.html",
            "title": "Solar plant in Uzbekistan connects to the grid",
            "summary": "A solar plant went live.",
            "content_html": "<p>TASHKENT -- It went live.</p><iframe src='https://evil.example'></iframe>",
            "date_published": "2026-05-30T06:00:00+00:00",
            "tags": ["solar", "Uzbekistan"],
            "_belt_and_road": {"category": "Energy"},
        },
        {"id": "json-bad", "title": "Missing link", "date_published": "2026-05-30T06:00:00Z"},
        "not an object",
    ],
}


def test_it_imports_rss_items_with_category_keywords_and_abstract(tmp_path):
    out, _err = import_articles(write(tmp_path, "feed.xml", RSS))
    icbc = Article.objects.get(feed_guid="guid-icbc")
    assert icbc.title == "ICBC deepens cooperation with Alipay"
    assert icbc.url == "https://portal.example.com/a/icbc-alipay.html"
    assert icbc.published_at.isoformat() == "2026-05-29T08:00:00+00:00"
    assert icbc.category.name == "Finance"
    assert sorted(k.name for k in icbc.keywords.all()) == ["Alipay", "ICBC"]
    assert icbc.abstract.startswith("The Industrial and Commercial Bank")
    assert icbc.dateline == "BEIJING, May 29 (Xinhua)"
    assert icbc.status == Article.Status.PUBLISHED
    wisdri = Article.objects.get(feed_guid="guid-wisdri")
    assert (
        wisdri.category.name == "Infrastructure"
    )  # first category when none is marked as the section
    assert [k.name for k in wisdri.keywords.all()] == ["steel"]
    assert wisdri.abstract == "WISDRI signed a contract."  # tags stripped from the abstract
    assert list(icbc.related.all()) == [wisdri]  # related link resolved though it came later
    assert "[1/2] ICBC deepens cooperation with Alipay" in out
    assert "2 created, 0 updated, 0 unchanged, 2 refused." in out


def test_it_reports_each_bad_item_on_one_line_and_imports_the_rest(tmp_path):
    path = write(tmp_path, "feed.xml", RSS)
    _out, err = import_articles(path)
    lines = err.strip().splitlines()
    assert len(lines) == 2
    assert f"{path}: item 3 ('No date here'): no valid publication date" in lines[0]
    assert (
        "item 4 ('Relative link'): link 'ftp://elsewhere/x' is not an absolute http(s) URL"
        in lines[1]
    )
    assert Article.objects.count() == 2


def test_it_removes_scripts_event_handlers_and_javascript_links(tmp_path):
    import_articles(write(tmp_path, "feed.xml", RSS))
    body = Article.objects.get(feed_guid="guid-icbc").body
    assert "<script" not in body and "alert(1)" not in body
    assert "onerror" not in body and "steal()" not in body
    assert "javascript:" not in body
    assert '<img src="https://img.example.com/x.png">' in body
    assert 'href="https://portal.example.com/more"' in body


def test_rerunning_updates_and_never_duplicates(tmp_path):
    path = write(tmp_path, "feed.xml", RSS)
    import_articles(path)
    Article.objects.filter(feed_guid="guid-icbc").update(title="Old title")
    write(
        tmp_path,
        "feed.xml",
        RSS.replace(
            "ICBC deepens cooperation with Alipay", "ICBC deepens cooperation with Alipay again"
        ),
    )
    out, _ = import_articles(path)
    assert Article.objects.count() == 2
    assert Category.objects.count() == 2
    assert Keyword.objects.count() == 3
    assert (
        Article.objects.get(feed_guid="guid-icbc").title
        == "ICBC deepens cooperation with Alipay again"
    )
    assert "0 created, 1 updated, 1 unchanged" in out  # only the retitled one changed


def test_it_imports_atom(tmp_path):
    import_articles(write(tmp_path, "feed.atom", ATOM))
    laos = Article.objects.get(feed_guid="urn:atom:laos")
    assert laos.url == "https://portal.example.com/a/laos.html"
    assert laos.category.name == "Infrastructure"
    assert sorted(k.name for k in laos.keywords.all()) == ["ASEAN", "railway"]
    assert laos.abstract == "Cargo on the China-Laos Railway kept growing."
    assert laos.body == "<p>KUNMING, May 27 (Xinhua) -- Cargo grew.</p>"


def test_it_imports_json_feed(tmp_path):
    _out, err = import_articles(write(tmp_path, "feed.json", json.dumps(JSON_FEED)))
    solar = Article.objects.get(feed_guid="json-solar")
    assert solar.category.name == "Energy"
    assert sorted(k.name for k in solar.keywords.all()) == ["Uzbekistan", "solar"]
    assert "iframe" not in solar.body
    assert "item 2 ('Missing link'): link '' is not an absolute http(s) URL" in err
    assert "item 3 ('?'): not a JSON object" in err
    assert Article.objects.count() == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "<rss><channel><item><title>broken</item></channel>",
            "not a well-formed RSS or Atom feed",
        ),
        ("just some text", "not a well-formed RSS or Atom feed"),
        ('{"items": []}', "JSON without a jsonfeed.org version is not a JSON Feed"),
        ("{not json", "not valid JSON"),
    ],
)
def test_a_malformed_feed_gets_one_clear_error_and_imports_nothing(tmp_path, content, message):
    path = write(tmp_path, "bad.xml", content)
    with pytest.raises(CommandError) as error:
        import_articles(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)
    assert Article.objects.count() == 0


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        import_articles(str(tmp_path / "nowhere.xml"))


def test_it_fetches_a_feed_over_http(settings):
    settings.FEED_ALLOW_LOOPBACK = True  # test-only: the server below is on 127.0.0.1

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = ATOM.encode() if self.path == "/feed.atom" else b"gone"
            self.send_response(200 if self.path == "/feed.atom" else 404)
            self.send_header("Content-Type", "application/atom+xml")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        import_articles(f"{base}/feed.atom")
        assert Article.objects.filter(feed_guid="urn:atom:laos").exists()
        with pytest.raises(CommandError, match=r"cannot fetch the feed \(HTTP 404\)"):
            import_articles(f"{base}/missing")
    finally:
        server.shutdown()
