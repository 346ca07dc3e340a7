"""Feed sources: fetched on a schedule with conditional GET, every fetch recorded, "Fetch
now" in admin, and safe against SSRF (tested against a real local HTTP server)."""

from __future__ import annotations

import re
import socket
import threading
import time
from datetime import UTC, datetime
from html import unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from django.urls import reverse

from articles import fetching
from articles.fetching import FetchRefused, fetch_url, public_addresses
from articles.models import Article, FeedFetch, FeedSource
from articles.tasks import fetch_feeds
from tests.factories import CategoryFactory, StaffUserFactory

pytestmark = pytest.mark.django_db

FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>Portal</title>
<item><guid>g1</guid><title>{title}</title><link>https://portal.example.com/1</link>
<pubDate>Wed, 25 Nov 2026 08:00:00 GMT</pubDate><category>Trade</category></item>
<item><guid>g2</guid><title>Second</title><link>https://portal.example.com/2</link>
<pubDate>Wed, 25 Nov 2026 09:00:00 GMT</pubDate></item>
<item><guid>g3</guid><title>From the future</title><link>https://portal.example.com/3</link>
<pubDate>Wed, 25 Nov 2099 09:00:00 GMT</pubDate></item>
</channel></rss>"""


class FeedServer:
    """A real HTTP server on 127.0.0.1 that speaks ETag / Last-Modified like a portal."""

    def __init__(self) -> None:
        self.title = "First"
        self.requests: list[dict] = []
        self.routes: dict[str, tuple[int, dict, bytes]] = {}
        self.delay = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append({"path": self.path, **dict(self.headers)})
                time.sleep(server.delay)
                if self.path in server.routes:
                    status, headers, body = server.routes[self.path]
                else:
                    body = FEED.format(title=server.title).encode()
                    etag = f'"v-{server.title}"'
                    if self.headers.get("If-None-Match") == etag:
                        status, headers, body = 304, {}, b""
                    else:
                        status = 200
                        headers = {
                            "ETag": etag,
                            "Last-Modified": "Wed, 25 Nov 2026 10:00:00 GMT",
                            "Content-Type": "application/rss+xml",
                        }
                self.send_response(status)
                for key, value in headers.items():
                    if value is not None:  # None: leave the header out
                        self.send_header(key, value)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server():
    feed_server = FeedServer()
    yield feed_server
    feed_server.httpd.shutdown()


@pytest.fixture
def loopback_allowed(settings):
    settings.FEED_ALLOW_LOOPBACK = True  # test-only: our feed server is on 127.0.0.1


def source(url: str, **kwargs) -> FeedSource:
    kwargs.setdefault("language", "en")
    return FeedSource.objects.create(name="Portal", url=url, **kwargs)


def test_the_beat_fetches_active_sources_and_a_second_fetch_is_a_conditional_get(
    server, loopback_allowed, settings
):
    assert settings.CELERY_BEAT_SCHEDULE["fetch-feeds"] == {
        "task": "articles.tasks.fetch_feeds",
        "schedule": 900.0,  # every 15 minutes by default
    }
    portal = source(f"{server.url}/feed.xml")
    source(f"{server.url}/off.xml", is_active=False)
    fetch_feeds.delay()
    first = FeedFetch.objects.get()
    assert (first.source, first.status, first.new, first.updated, first.refused) == (
        portal,
        200,
        2,
        0,
        1,
    )
    assert "'From the future'" in first.refused_items and first.error == ""
    assert sorted(Article.objects.values_list("title", flat=True)) == ["First", "Second"]
    fetch_feeds.delay()
    second = FeedFetch.objects.order_by("-id").first()
    assert (second.status, second.new, second.updated) == (304, 0, 0)
    assert server.requests[-1]["If-None-Match"] == '"v-First"'
    assert server.requests[-1]["If-Modified-Since"] == "Wed, 25 Nov 2026 10:00:00 GMT"
    assert [r["path"] for r in server.requests] == ["/feed.xml", "/feed.xml"]  # never /off.xml
    server.title = "First, corrected"
    fetch_feeds.delay()
    third = FeedFetch.objects.order_by("-id").first()
    assert (third.status, third.new, third.updated) == (200, 0, 1)  # only the changed item


def test_a_loopback_feed_is_refused_unless_the_test_only_setting_allows_it(server):
    portal = source(f"{server.url}/feed.xml")
    fetch_feeds.delay()
    fetch = FeedFetch.objects.get()
    assert fetch.error == "127.0.0.1 resolves to 127.0.0.1, a loopback address: refused"
    assert fetch.status is None and server.requests == []  # no connection was made
    assert not Article.objects.exists()
    portal.url = f"http://localhost:{server.httpd.server_port}/feed.xml"
    portal.save()
    fetch_feeds.delay()
    assert "localhost resolves to" in FeedFetch.objects.order_by("-id").first().error


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("172.16.5.4", "private"),
        ("169.254.169.254", "link-local"),  # the cloud's metadata service
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "not public"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
    ],
)
def test_every_non_public_address_is_refused(address, kind):
    with pytest.raises(FetchRefused, match=f"a {kind} address: refused"):
        public_addresses(address, 80)


def test_a_public_address_passes():
    assert [str(a) for a in public_addresses("93.184.215.14", 443)] == ["93.184.215.14"]


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("http://169.254.169.254/latest/meta-data/", "a link-local address: refused"),
        ("http://10.0.0.7/feed.xml", "a private address: refused"),
        ("file:///etc/passwd", "'file:///etc/passwd' is not an http(s) URL"),
    ],
)
def test_every_redirect_is_checked_again(server, loopback_allowed, location, message):
    server.routes["/moved"] = (302, {"Location": location}, b"")
    portal = source(f"{server.url}/moved")
    fetch_feeds.delay()
    fetch = portal.fetches.get()
    assert message in fetch.error
    assert not Article.objects.exists()


def test_a_redirect_loop_is_cut_off(server, loopback_allowed):
    server.routes["/loop"] = (301, {"Location": "/loop"}, b"")
    with pytest.raises(FetchRefused, match="more than 5 redirects"):
        fetch_url(f"{server.url}/loop", max_bytes=1000)


def test_a_feed_over_the_size_cap_is_refused(server, loopback_allowed):
    server.routes["/big"] = (200, {}, b"x" * 5000)
    with pytest.raises(FetchRefused, match="over the 1,000 byte cap"):
        fetch_url(f"{server.url}/big", max_bytes=1000)


def test_a_feed_that_declares_no_length_is_cut_off_at_the_cap_as_it_streams(
    server, loopback_allowed
):
    # HTTP/1.0 without Content-Length: the body runs until the server closes.
    server.routes["/endless"] = (200, {"Content-Length": None}, b"x" * 300_000)
    with pytest.raises(FetchRefused, match="the feed is over the 100,000 byte cap"):
        fetch_url(f"{server.url}/endless", max_bytes=100_000)


def test_a_feed_over_the_cap_is_recorded_and_imports_nothing(server, loopback_allowed, monkeypatch):
    monkeypatch.setattr("articles.services.MAX_FEED_BYTES", 1000)
    server.routes["/big"] = (200, {"Content-Length": None}, FEED.format(title="x" * 2000).encode())
    portal = source(f"{server.url}/big")
    fetch_feeds.delay()
    assert portal.fetches.get().error == "the feed is over the 1,000 byte cap"
    assert not Article.objects.exists()


def test_a_host_with_one_private_address_among_public_ones_is_refused(monkeypatch):
    answers = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 443)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", 443)),
    ]
    monkeypatch.setattr(fetching.socket, "getaddrinfo", lambda *args, **kwargs: answers)
    with pytest.raises(
        FetchRefused, match="portal.example.com resolves to 10.0.0.5, a private address: refused"
    ):
        public_addresses("portal.example.com", 443)


def test_a_name_that_resolves_to_the_metadata_service_is_refused_before_connecting(monkeypatch):
    metadata = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80))]
    monkeypatch.setattr(fetching.socket, "getaddrinfo", lambda *args, **kwargs: metadata)
    connected: list = []
    monkeypatch.setattr(fetching.socket, "create_connection", lambda *a, **k: connected.append(a))
    with pytest.raises(FetchRefused, match="a link-local address: refused"):
        fetch_url("http://metadata.internal.example/latest/meta-data/", max_bytes=1000)
    assert connected == []


def test_a_fetched_item_takes_the_sources_language_and_default_section(server, loopback_allowed):
    finance = CategoryFactory(name="Finance")
    portal = source(f"{server.url}/feed.xml", language="zh-hans", default_category=finance)
    moment = datetime(2026, 11, 26, 4, 30, tzinfo=UTC)
    with time_machine.travel(moment, tick=False):
        fetch_feeds.delay()
    assert portal.fetches.get().at == moment  # when, as the fetch log records it
    first, second = Article.objects.order_by("feed_guid")
    assert (first.title, first.category.name, first.language) == ("First", "Trade", "zh-hans")
    assert (second.title, second.category, second.language) == ("Second", finance, "zh-hans")


def test_a_slow_server_times_out_with_a_clear_recorded_error(server, loopback_allowed, monkeypatch):
    monkeypatch.setattr(fetching, "READ_TIMEOUT_SECONDS", 0.5)
    server.delay = 2
    portal = source(f"{server.url}/feed.xml")
    fetch_feeds.delay()
    error = portal.fetches.get().error
    assert error.startswith("cannot fetch the feed:") and "timed out" in error


def test_a_download_past_the_overall_deadline_is_refused(server, loopback_allowed, monkeypatch):
    # Each read may be quick and the whole still too slow: a trickle is cut off.
    monkeypatch.setattr(fetching, "DEADLINE_SECONDS", 0)
    with pytest.raises(FetchRefused, match="the feed took longer than 0 s to download"):
        fetch_url(f"{server.url}/feed.xml", max_bytes=100_000)


def test_an_http_error_is_recorded_with_its_status(server, loopback_allowed):
    server.routes["/gone"] = (500, {}, b"oops")
    portal = source(f"{server.url}/gone")
    fetch_feeds.delay()
    fetch = portal.fetches.get()
    assert (fetch.status, fetch.error) == (500, "the server answered HTTP 500")


def test_a_file_source_reads_only_inside_feed_file_dir(settings, tmp_path):
    settings.FEED_FILE_DIR = str(tmp_path / "feeds")
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "portal.xml").write_text(FEED.format(title="From a file"))
    (tmp_path / "secret.xml").write_text(FEED.format(title="Secret"))
    good = source("file:portal.xml")
    bad = source("file:../secret.xml")
    fetch_feeds.delay()
    assert good.fetches.get().new == 2
    assert "is outside FEED_FILE_DIR" in bad.fetches.get().error
    assert not Article.objects.filter(title="Secret").exists()


def test_admin_fetch_now_shows_each_fetch_and_refuses_a_bad_url(client, server, loopback_allowed):
    client.force_login(StaffUserFactory(username="root", is_superuser=True))
    add = client.post(
        reverse("admin:articles_feedsource_add"),
        {
            "name": "Portal",
            "url": "ftp://portal.example.com/feed",
            "language": "en",
            "is_active": "on",
            "fetches-TOTAL_FORMS": "0",
            "fetches-INITIAL_FORMS": "0",
        },
    )
    assert "a feed URL starts with http:// or https://" in unescape(add.content.decode())
    assert not FeedSource.objects.exists()
    portal = source(f"{server.url}/feed.xml", language="zh-hans")
    response = client.post(
        reverse("admin:articles_feedsource_fetch", args=[portal.pk]), follow=True
    )
    page = " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())
    assert "Portal: 2 new, 0 updated, 1 refused." in page
    assert "Fetch now" in page
    fetch = portal.fetches.get()
    assert "From the future" in page and str(fetch.status) in page
    listing = client.get(reverse("admin:articles_feedsource_changelist")).content.decode()
    assert "2 / 0 / 1" in listing
    # The last fetch is shown in the newsroom's time (Asia/Shanghai), the server is in UTC.
    fetch.at = datetime(2026, 11, 26, 4, 30, tzinfo=UTC)
    fetch.save()
    listing = client.get(reverse("admin:articles_feedsource_changelist")).content.decode()
    assert "2026-11-26 12:30" in listing
