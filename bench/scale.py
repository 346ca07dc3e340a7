"""`make bench-scale`: the whole service at a million readers, measured against issue 16.

    python -m bench.scale                    # 1,000,000 readers (a few minutes to load)
    python -m bench.scale --readers 20000    # quick, while developing

It fills a PostgreSQL database of its own (BENCH_SCALE_DATABASE_URL, default
.../bench_scale; never the test database) with set-based SQL (INSERT ... SELECT
generate_series): N readers, one sent issue with a delivery per reader and about N
tracking events already applied, then measures, with DEBUG off:

  applier     one process applying a backlog of new events in bulk (events/s)
  admin       every admin list and report page, as a logged-in superuser through
              Django's test client: time (median of 3 after a warm-up) and queries
  search      reader search in admin: whole address, prefix, substring
  export      admin's Export CSV job of every reader (rows/s)
  webhook     Mailgun tracking webhooks posted to the production server (gunicorn,
              as the Procfile runs it) over 30 keep-alive connections (requests/s)
  signup      30 sign-ups a second, each client its own address and IP (X-Forwarded-For
              behind one proxy), rate limits on: p95 of the POST
  send        the next issue to every active reader through two Celery workers and
              the Mailgun stand-in (deliveries/s)

and writes bench/SCALE.md and bench/scale-results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
DATABASE_URL = os.environ.get(
    "BENCH_SCALE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_scale"
)
REDIS_URL = os.environ.get("BENCH_SCALE_REDIS_URL", "redis://127.0.0.1:6379/8")
_redis_db = int(REDIS_URL.rsplit("/", 1)[1])
REDIS_CACHE_URL = REDIS_URL.rsplit("/", 1)[0] + f"/{_redis_db + 1}"
SITE_HOST = "weekly.example.org"
SIGNING_KEY = "key-bench-scale-3ax6xnjp29jd6fds"
WEBHOOK_SECRET = "esp-hook:bench-scale-secret"
PORT = int(os.environ.get("BENCH_SCALE_PORT", "8765"))

ENV = {
    "DATABASE_URL": DATABASE_URL,
    "REDIS_URL": REDIS_URL,
    "REDIS_CACHE_URL": REDIS_CACHE_URL,
    "CELERY_TASK_ALWAYS_EAGER": "false",
    "SITE_URL": f"https://{SITE_HOST}",
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "DEBUG": "false",
    "SECRET_KEY": "bench-scale-" + "k" * 60,
    "BEHIND_HTTPS_PROXY": "true",
    "NEWSLETTER_PROXY_COUNT": "1",
    "ANYMAIL_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "NEWSLETTER_WEBHOOK_ESPS": "mailgun",
    "ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY,
    "LOG_LEVEL": "WARNING",
}


def say(text: str = "") -> None:
    print(text, flush=True)


def progress(text: str) -> None:
    sys.stderr.write("\r" + text.ljust(78))
    sys.stderr.flush()


def setup(readers: int) -> None:
    import django

    from bench.__main__ import ensure_database

    os.environ.update(ENV)
    ensure_database(DATABASE_URL)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    call_command("collectstatic", verbosity=0, interactive=False)


# --- loading ---------------------------------------------------------------------------------


def _sql(statement: str, params: list | None = None) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)  # None: '%' is the modulo operator, not a placeholder


def _chunks(total: int, what: str, statement: str, size: int = 100_000) -> None:
    """Run `statement` (with __LO__ and __HI__) over 1..total in chunks, showing progress."""
    for lo in range(1, total + 1, size):
        hi = min(total, lo + size - 1)
        _sql(statement.replace("__LO__", str(lo)).replace("__HI__", str(hi)))
        progress(f"  {what} {hi:,}/{total:,}")
    sys.stderr.write("\n")


def load(readers: int) -> dict:
    """Fill the database: readers, one sent issue, its ledger and ~N applied events."""
    from django.db import connection

    from bench.__main__ import make_issue
    from newsletter.models import Issue
    from newsletter.services.tallies import issue_tally_rebuild

    started = time.perf_counter()
    _sql(
        "TRUNCATE newsletter_trackingevent, newsletter_delivery, newsletter_issuetally,"
        " newsletter_subscriber_categories, newsletter_consentrecord, newsletter_suppression,"
        " newsletter_repermission, newsletter_subscriber RESTART IDENTITY CASCADE"
    )
    _sql("DELETE FROM newsletter_issueitem")
    _sql("DELETE FROM newsletter_issue")
    issue, categories = make_issue(48)
    sent = datetime.now(UTC).replace(microsecond=0) - __import__("datetime").timedelta(days=2)
    Issue.objects.filter(pk=issue.pk).update(
        status=Issue.Status.SENT,
        send_started_at=sent,
        sent_at=sent,
        recipients_count=readers,
        sent_count=readers,
    )
    newsletter_id = issue.newsletter_id
    # Readers joined over five years; 1 in 50 unsubscribed, 1 in 100 bounced, 1 in
    # 100 pending, 1 in 1,000 complained; the rest are active.
    _chunks(
        readers,
        "readers",
        f"""
        INSERT INTO newsletter_subscriber (email, name, organisation, country, language, status,
            token_secret, source, created_at, updated_at, confirmed_at, soft_bounce_count,
            newsletter_id)
        SELECT 'reader' || i || '@' || (ARRAY['example.com','mail.example.cn','post.example.org',
                 'example.net'])[1 + i % 4],
               'Reader ' || i, 'Organisation ' || (i % 5000),
               (ARRAY['CN','PK','KZ','ID','GR','IT','KE','BR'])[1 + i % 8],
               CASE WHEN i % 3 = 0 THEN 'zh-hans' ELSE 'en' END,
               CASE WHEN i % 1000 = 4 THEN 'complained' WHEN i % 50 = 1 THEN 'unsubscribed'
                    WHEN i % 100 = 2 THEN 'bounced' WHEN i % 100 = 3 THEN 'pending'
                    ELSE 'active' END,
               md5(i::text), 'bench',
               now() - ((({readers} - i)::float / {readers}) * interval '1825 days'),
               now(),
               CASE WHEN i % 100 = 3 THEN NULL
                    ELSE now() - ((({readers} - i)::float / {readers}) * interval '1825 days')
                         + interval '10 minutes' END,
               0, {newsletter_id}
        FROM generate_series(__LO__, __HI__) AS i
        """,
    )
    ids = [c.pk for c in categories]
    _chunks(
        readers,
        "reader categories",
        f"""
        INSERT INTO newsletter_subscriber_categories (subscriber_id, category_id)
        SELECT i, (ARRAY{ids})[1 + i % 4] FROM generate_series(__LO__, __HI__) AS i
        WHERE i % 3 <> 0
        """,
    )
    _chunks(
        readers,
        "consent records",
        """
        INSERT INTO newsletter_consentrecord (action, at, ip, user_agent, form, method, note,
            subscriber_id)
        SELECT 'confirm', s.created_at, '192.0.2.1'::inet, 'Mozilla/5.0', 'page', 'link', '', s.id
        FROM newsletter_subscriber s WHERE s.id BETWEEN __LO__ AND __HI__ AND s.status <> 'pending'
        UNION ALL
        SELECT 'withdraw', now() - (s.id % 80) * interval '1 day', NULL::inet, '', '', 'one-click', '',
               s.id
        FROM newsletter_subscriber s WHERE s.id BETWEEN __LO__ AND __HI__
          AND s.status = 'unsubscribed'
        """,
    )
    _sql(
        f"""
        INSERT INTO newsletter_suppression (email_hash, reason, created_at, newsletter_id)
        SELECT encode(sha256(convert_to(email, 'UTF8')), 'hex'), status, now(), {newsletter_id}
        FROM newsletter_subscriber WHERE status IN ('bounced', 'complained')
        """
    )
    # The issue went to every reader but the pending ones; one ESP message id per call of
    # 1,000. 40 % opened (a fifth of them twice), 10 % clicked, 1.5 % bounced.
    sent_at = f"'{sent.isoformat()}'::timestamptz"
    _chunks(
        readers,
        "deliveries",
        f"""
        INSERT INTO newsletter_delivery (status, variant, esp_message_id, attempts, last_error,
            created_at, sent_at, opened_at, open_count, clicked_at, click_count, issue_id,
            subscriber_id)
        SELECT CASE WHEN s.status = 'bounced' OR s.id % 200 = 7 THEN 'bounced'
                    WHEN s.status = 'complained' THEN 'complained'
                    WHEN s.id % 1000 = 9 THEN 'failed' ELSE 'sent' END,
               '', '<' || (s.id / 1000) || '.bench@mg.{SITE_HOST}>', 1, '', {sent_at},
               {sent_at},
               CASE WHEN s.id % 5 IN (0, 1) THEN {sent_at} + (s.id % 72) * interval '1 hour' END,
               CASE WHEN s.id % 5 = 0 THEN 2 WHEN s.id % 5 = 1 THEN 1 ELSE 0 END,
               CASE WHEN s.id % 10 = 0
                    THEN {sent_at} + (s.id % 72) * interval '1 hour' + interval '1 minute' END,
               CASE WHEN s.id % 10 = 0 THEN 1 ELSE 0 END,
               {issue.pk}, s.id
        FROM newsletter_subscriber s
        WHERE s.id BETWEEN __LO__ AND __HI__ AND s.status <> 'pending'
        """,
    )
    events = """
        INSERT INTO newsletter_trackingevent (esp, event_type, esp_event_id, message_id,
            timestamp, received_at, processed_at, reject_reason, description, mta_response,
            click_url, payload, delivery_id, bounce_kind, outcome)
        SELECT 'mailgun', e.kind, 'mailgun:' || e.kind || ':' || e.n || ':' || d.id,
               d.esp_message_id, e.at, e.at, e.at, '', '', '', e.url,
               jsonb_build_object('metadata', jsonb_build_object('delivery', d.id::text,
                   'issue', d.issue_id::text, 'subscriber', d.subscriber_id::text),
                   'recipient', '', 'esp_event', '{}'::jsonb),
               d.id, e.bounce, e.outcome
        FROM newsletter_delivery d
        CROSS JOIN LATERAL (VALUES
            ('delivered', 1, d.sent_at + interval '1 minute', '', '', '',
             d.status = 'sent' AND d.id % 4 = 0),
            ('opened', 1, d.opened_at, '', '', '', d.opened_at IS NOT NULL),
            ('opened', 2, d.opened_at + interval '3 hours', '', '', '', d.open_count = 2),
            ('clicked', 1, d.clicked_at,
             'https://portal.example.com/beltandroad/bench-story-' || (d.id % 12)
                 || '.html?utm_source=newsletter', '', '', d.clicked_at IS NOT NULL),
            ('bounced', 1, d.sent_at + interval '5 minutes', '',
             CASE WHEN d.id % 200 = 7 THEN 'soft' ELSE 'hard' END,
             CASE WHEN d.id % 200 = 7 THEN 'soft-bounce' ELSE 'bounced' END,
             d.status = 'bounced'),
            ('complained', 1, d.sent_at + interval '1 day', '', '', 'complained',
             d.status = 'complained')
        ) AS e(kind, n, at, url, bounce, outcome, happened)
        WHERE e.happened AND d.id BETWEEN __LO__ AND __HI__
    """
    deliveries = Issue.objects.get(pk=issue.pk).deliveries.count()
    _chunks(deliveries, "tracking events", events)
    load_seconds = time.perf_counter() - started
    say("  VACUUM ANALYZE …")
    vacuum_started = time.perf_counter()
    connection.ensure_connection()
    with connection.cursor() as cursor:
        for table in (
            "newsletter_subscriber",
            "newsletter_subscriber_categories",
            "newsletter_consentrecord",
            "newsletter_suppression",
            "newsletter_delivery",
            "newsletter_trackingevent",
            "newsletter_issue",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")
    vacuum_seconds = time.perf_counter() - vacuum_started
    tally_started = time.perf_counter()
    issue.refresh_from_db()
    issue_tally_rebuild(issue=issue)
    tally_seconds = time.perf_counter() - tally_started
    from newsletter.models import Delivery, Subscriber, TrackingEvent

    counts = {
        "readers": Subscriber.objects.count(),
        "deliveries": Delivery.objects.count(),
        "events": TrackingEvent.objects.count(),
    }
    say(
        f"  loaded {counts['readers']:,} readers, {counts['deliveries']:,} deliveries, "
        f"{counts['events']:,} events in {load_seconds:.0f} s; VACUUM ANALYZE "
        f"{vacuum_seconds:.0f} s; issue tally built from the ledger in {tally_seconds:.1f} s"
    )
    return {
        **counts,
        "issue_id": issue.pk,
        "load_seconds": round(load_seconds, 1),
        "vacuum_seconds": round(vacuum_seconds, 1),
        "tally_build_seconds": round(tally_seconds, 2),
    }


# --- the event applier -----------------------------------------------------------------------


def measure_applier(issue_id: int, count: int) -> dict:
    """Store `count` new events (as the webhook would) and apply them all in one process."""
    from django.db import connection

    from newsletter.services.list_hygiene import tracking_events_drain

    _sql(
        f"""
        INSERT INTO newsletter_trackingevent (esp, event_type, esp_event_id, message_id,
            timestamp, received_at, reject_reason, description, mta_response, click_url,
            payload, bounce_kind, outcome)
        SELECT 'mailgun', k.kind, 'mailgun:new:{time.time_ns()}:' || g, d.esp_message_id, now(), now(), '',
               '', CASE WHEN k.kind = 'bounced' THEN '550 5.1.1 no such user' ELSE '' END,
               CASE WHEN k.kind = 'clicked' THEN 'https://portal.example.com/beltandroad/'
                    || 'bench-story-' || (g % 12) || '.html?utm_campaign=weekly' ELSE '' END,
               jsonb_build_object('metadata', jsonb_build_object('delivery', d.id::text,
                   'issue', d.issue_id::text, 'subscriber', d.subscriber_id::text),
                   'recipient', s.email, 'esp_event', '{{}}'::jsonb),
               '', ''
        FROM generate_series(1, {count}) AS g
        JOIN newsletter_delivery d
          ON d.id = 1 + (g::bigint * 7919) % (SELECT max(id) FROM newsletter_delivery)
        JOIN newsletter_subscriber s ON s.id = d.subscriber_id
        CROSS JOIN LATERAL (SELECT CASE WHEN g % 200 = 0 THEN 'bounced'
                                        WHEN g % 1000 = 1 THEN 'complained'
                                        WHEN g % 4 = 0 THEN 'clicked'
                                        WHEN g % 8 = 1 THEN 'delivered'
                                        ELSE 'opened' END AS kind) AS k
        WHERE d.issue_id = {issue_id}
        """
    )
    _sql("ANALYZE newsletter_trackingevent")
    connection.close()
    queries_before = 0
    started = time.perf_counter()
    cpu = time.process_time()
    result = tracking_events_drain(seconds=3600)
    seconds = time.perf_counter() - started
    rate = result.applied / seconds if seconds else 0.0
    say(
        f"  applied {result.applied:,} events in {seconds:.1f} s: {rate:,.0f}/s "
        f"(this process's CPU {time.process_time() - cpu:.1f} s; {result.waiting} waiting)"
    )
    del queries_before
    return {
        "events": result.applied,
        "seconds": round(seconds, 2),
        "per_second": round(rate, 1),
        "cpu_seconds": round(time.process_time() - cpu, 2),
    }


# --- admin pages ------------------------------------------------------------------------------


def admin_urls(issue_id: int) -> list[tuple[str, str]]:
    from django.contrib import admin
    from django.urls import reverse

    from newsletter.models import Subscriber

    urls = [("admin index", reverse("admin:index"))]
    for model in admin.site._registry:
        meta = model._meta
        urls.append(
            (
                f"{meta.app_label}.{meta.model_name} list",
                reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"),
            )
        )
    reader = Subscriber.objects.order_by("pk").values_list("pk", "email")[
        Subscriber.objects.count() // 2
    ]
    subscribers = reverse("admin:newsletter_subscriber_changelist")
    deliveries = reverse("admin:newsletter_delivery_changelist")
    events = reverse("admin:newsletter_trackingevent_changelist")
    urls += [
        ("readers: active", f"{subscribers}?status__exact=active"),
        ("readers: joined this month", f"{subscribers}?created_at__gte=2026-11-01"),
        ("readers: one category", f"{subscribers}?categories__id__exact=1"),
        ("reader", reverse("admin:newsletter_subscriber_change", args=[reader[0]])),
        ("deliveries of the issue", f"{deliveries}?issue__id__exact={issue_id}"),
        ("deliveries bounced", f"{deliveries}?status__exact=bounced"),
        ("events: clicks", f"{events}?event_type=clicked"),
        ("events: bounces", f"{events}?outcome__exact=bounced"),
        ("issue", reverse("admin:newsletter_issue_change", args=[issue_id])),
        ("issue results report", reverse("newsletter_reports:issue", args=[issue_id])),
        ("list-health report", reverse("newsletter_reports:health")),
    ]
    return urls


def search_urls() -> list[tuple[str, str]]:
    from django.urls import reverse

    from newsletter.models import Subscriber

    subscribers = reverse("admin:newsletter_subscriber_changelist")
    email = Subscriber.objects.order_by("-pk").values_list("email", flat=True)[7]
    number = re.search(r"\d+", email).group(0)
    return [
        ("search: whole address", f"{subscribers}?q={email}"),
        ("search: address prefix", f"{subscribers}?q=reader{number[:-1]}"),
        ("search: substring of address", f"{subscribers}?q={number[1:]}@"),
        ("search: organisation", f"{subscribers}?q=Organisation+4321"),
    ]


def measure_pages(urls: list[tuple[str, str]], what: str) -> list[dict]:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    user, _ = User.objects.get_or_create(
        username="bench-chief", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(HTTP_HOST=SITE_HOST)
    client.force_login(user)
    rows = []
    for name, url in urls:
        client.get(url, secure=True)  # warm-up: caches, connection, the page's templates
        times, cpu, queries, status = [], [], 0, 0
        for _ in range(3):
            with CaptureQueriesContext(connection) as captured:
                started, started_cpu = time.perf_counter(), time.process_time()
                response = client.get(url, secure=True)
                times.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - started_cpu) * 1000)
            queries, status = len(captured.captured_queries), response.status_code
        rows.append(
            {
                "page": name,
                "url": url,
                "status": status,
                "ms": round(statistics.median(times), 1),
                "cpu_ms": round(statistics.median(cpu), 1),
                "db_ms": round(sum(float(q["time"]) for q in captured.captured_queries) * 1000, 1),
                "queries": queries,
            }
        )
        progress(f"  {what}: {name}: {rows[-1]['ms']:.0f} ms, {queries} queries")
    sys.stderr.write("\n")
    return rows


# --- export ---------------------------------------------------------------------------------


def measure_export(limit: int) -> dict:
    """Admin's "Export CSV" as it runs: a background job (COPY on PostgreSQL) to a file."""
    from newsletter.models import BackgroundJob
    from newsletter.services.jobs import job_file, job_run

    # Every reader, as the list's unfiltered "Export CSV" does; or the first `limit` ids.
    params: dict = {"ids": list(range(1, limit + 1))} if limit else {"filters": {}, "q": ""}
    job = BackgroundJob.objects.create(kind="export", params=params)
    started = time.perf_counter()
    job_run(job_id=job.pk)
    seconds = time.perf_counter() - started
    job.refresh_from_db()
    rows = job.done
    path = job_file(job)
    if path is not None:
        path.unlink(missing_ok=True)
    say(f"  exported {rows:,} readers in {seconds:.1f} s: {rows / seconds:,.0f} rows/s")
    return {"rows": rows, "seconds": round(seconds, 2), "per_second": round(rows / seconds, 1)}


# --- the web server ---------------------------------------------------------------------------


def procfile_web() -> list[str]:
    """Return the Procfile's web command, as production runs it, on PORT."""
    line = next(
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")
    )
    command = line.removeprefix("web:").strip()
    out = subprocess.run(
        ["sh", "-c", f"printf '%s\\n' {command}"],
        env={**os.environ, "PORT": str(PORT)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    args = [a for a in out if a]
    args[0] = str(Path(sys.executable).parent / args[0])
    return [a for a in args if a != "--access-logfile" and a != "-"]


class WebServer:
    def __init__(self) -> None:
        self.command = procfile_web()
        self.log = (BENCH / "out").mkdir(exist_ok=True) or (BENCH / "out" / "gunicorn.log")
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env={**os.environ, **ENV},
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        import urllib.request

        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1)
                return
            except Exception as exc:
                if hasattr(exc, "code"):
                    return
                time.sleep(0.3)
        raise RuntimeError(f"gunicorn did not start; see {self.log}")

    def cpu_seconds(self) -> float:
        """Return the CPU the server has used so far: its live processes and those reaped.

        On a machine shared with other work the wall figures move by tens of per cent;
        requests per second of the server's own CPU say what the code costs.
        """
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the process ended meanwhile
            if int(fields[2]) != self.process.pid:  # the process group gunicorn leads
                continue
            total += (int(fields[11]) + int(fields[12])) / ticks
            if int(stat.parent.name) == self.process.pid:  # workers it reaped
                total += (int(fields[13]) + int(fields[14])) / ticks
        return total

    def stop(self) -> None:
        import signal

        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


def mailgun_body(n: int, delivery: tuple[int, int, int, str, str]) -> bytes:
    delivery_id, issue_id, subscriber_id, message_id, email = delivery
    token = hashlib.sha256(f"load-{n}".encode()).hexdigest()[:50]
    stamp = str(int(time.time()))
    signature = hmac.new(SIGNING_KEY.encode(), f"{stamp}{token}".encode(), hashlib.sha256)
    data = {
        "signature": {"timestamp": stamp, "token": token, "signature": signature.hexdigest()},
        "event-data": {
            "id": f"load-{time.time_ns()}-{n}",
            "timestamp": time.time(),
            "event": "opened",
            "recipient": email,
            "user-variables": {
                "delivery": str(delivery_id),
                "issue": str(issue_id),
                "subscriber": str(subscriber_id),
            },
            "message": {"headers": {"message-id": message_id.strip("<>")}},
            "client-info": {"client-name": "Thunderbird"},
        },
    }
    return json.dumps(data, separators=(",", ":")).encode()


async def _keepalive_load(
    requests: list[bytes], connections: int, seconds: float
) -> tuple[list[float], int, int, int]:
    """Post the prepared requests over keep-alive connections; return latencies, errors,
    requests done and reconnections."""
    latencies: list[float] = []
    errors = 0
    done = 0
    reconnects = 0
    queue = iter(requests)
    deadline = time.monotonic() + seconds

    async def one_connection() -> None:
        nonlocal errors, done, reconnects
        reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
        for raw in queue:
            if time.monotonic() > deadline:
                break
            started = time.perf_counter()
            for _attempt in range(3):
                try:
                    writer.write(raw)
                    await writer.drain()
                    head = await reader.readuntil(b"\r\n\r\n")
                    break
                except (asyncio.IncompleteReadError, ConnectionError):
                    # A worker past --max-requests closes its keep-alive connections;
                    # an ESP opens a new one and posts again, and so do we.
                    reconnects += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
            else:
                raise RuntimeError("the web server keeps closing the connection")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
            done += 1
        writer.close()

    await asyncio.gather(*(one_connection() for _ in range(connections)))
    return latencies, errors, done, reconnects


def measure_webhook(seconds: float = 15.0, connections: int = 30) -> dict:
    import base64

    from newsletter.models import Delivery

    rows = list(
        Delivery.objects.order_by("?").values_list(
            "pk", "issue_id", "subscriber_id", "esp_message_id", "subscriber__email"
        )[:2000]
    )
    auth = base64.b64encode(WEBHOOK_SECRET.encode()).decode()
    prepared = []
    for n in range(int(seconds * 3000)):
        body = mailgun_body(n, rows[n % len(rows)])
        prepared.append(
            b"POST /anymail/mailgun/tracking/ HTTP/1.1\r\n"
            + f"Host: {SITE_HOST}\r\nAuthorization: Basic {auth}\r\n".encode()
            + b"X-Forwarded-Proto: https\r\nX-Forwarded-For: 198.51.100.7\r\n"
            + b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
    started = time.perf_counter()
    latencies, errors, done, reconnects = asyncio.run(
        _keepalive_load(prepared, connections, seconds)
    )
    wall = time.perf_counter() - started
    latencies.sort()
    result = {
        "connections": connections,
        "requests": done,
        "errors": errors,
        "reconnects": reconnects,
        "per_second": round(done / wall, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
    }
    say(
        f"  webhook: {result['per_second']:,.0f} requests/s over {connections} connections, "
        f"p99 {result['p99_ms']} ms, {errors} errors"
    )
    return result


_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def measure_signups(rate: float = 30.0, seconds: float = 20.0) -> dict:
    """Open-loop: a new client every 1/rate s shows the form, waits, and signs up."""
    import requests
    from django.conf import settings

    base = f"http://127.0.0.1:{PORT}/newsletter/subscribe/"
    wait = settings.NEWSLETTER_MIN_FILL_SECONDS + 0.2
    posts: list[float] = []
    gets: list[float] = []
    outcomes: dict[str, int] = {}
    lock = threading.Lock()
    run = time.time_ns()
    network = (run // 10**9) & 0xFFFF

    def client(n: int) -> None:
        session = requests.Session()
        # Its own /64 (the unit the per-IP limits count for IPv6), new in every run: the
        # limits remember an address for a day, and a rerun from the same addresses
        # met the code (400) instead of the form.
        ip = f"2001:db8:{network:x}:{n:x}::1"
        headers = {
            "Host": SITE_HOST,
            "X-Forwarded-For": ip,
            "X-Forwarded-Proto": "https",
            "Referer": f"https://{SITE_HOST}/newsletter/subscribe/",
        }
        started = time.perf_counter()
        page = session.get(base, headers=headers, timeout=30)
        got = time.perf_counter() - started
        fields = dict(_HIDDEN.findall(page.text))
        csrf = page.cookies.get("csrftoken") or session.cookies.get("csrftoken", "")
        time.sleep(wait)
        data = {
            **fields,
            "email": f"surge-{run}-{n}@example.org",
            "name": f"Surge {n}",
            "consent": "on",
        }
        headers["Cookie"] = f"csrftoken={csrf}"
        started = time.perf_counter()
        answer = session.post(base, data=data, headers=headers, timeout=30)
        took = time.perf_counter() - started
        kind = (
            "check your inbox"
            if answer.status_code == 200 and "inbox" in answer.text.lower()
            else f"HTTP {answer.status_code}"
        )
        with lock:
            gets.append(got)
            posts.append(took)
            outcomes[kind] = outcomes.get(kind, 0) + 1

    total = int(rate * seconds)
    with ThreadPoolExecutor(max_workers=int(rate * (wait + 3))) as pool:
        start = time.perf_counter()
        for n in range(total):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(client, n)
    posts.sort()
    gets.sort()
    result = {
        "rate": rate,
        "signups": len(posts),
        "outcomes": outcomes,
        "post_p50_ms": round(posts[len(posts) // 2] * 1000, 1),
        "post_p95_ms": round(posts[int(len(posts) * 0.95)] * 1000, 1),
        "get_p95_ms": round(gets[int(len(gets) * 0.95)] * 1000, 1),
    }
    say(
        f"  signup at {rate:.0f}/s: POST p95 {result['post_p95_ms']} ms "
        f"(p50 {result['post_p50_ms']}), form GET p95 {result['get_p95_ms']} ms; {outcomes}"
    )
    return result


# --- the send ---------------------------------------------------------------------------------


def measure_send(readers: int) -> dict:
    from django.db import close_old_connections

    from bench.__main__ import Workers, make_issue
    from newsletter.models import Issue, Newsletter
    from newsletter.services.issues import issue_start_sending
    from standins.esp import EspStandin

    issue, categories = make_issue(int(time.time()) % 1_000_000)
    # The whole list would take most of an hour on a crowded machine: the issue goes
    # to `readers` readers of a second newsletter, next to the million of the first.
    main = Newsletter.objects.get(slug="belt-and-road-weekly")
    second = Newsletter.objects.create(
        **{
            f.name: getattr(main, f.name)
            for f in Newsletter._meta.concrete_fields
            if f.name not in ("id", "name", "slug")
        },
        name=f"Bench send {issue.number}",
        slug=f"bench-send-{issue.number}",
    )
    Issue.objects.filter(pk=issue.pk).update(newsletter=second)
    issue.refresh_from_db()
    ids = [c.pk for c in categories]
    _sql(
        f"""
        INSERT INTO newsletter_subscriber (email, name, organisation, country, language, status,
            token_secret, source, created_at, updated_at, confirmed_at, soft_bounce_count,
            newsletter_id)
        SELECT 'send' || i || '@example.net', 'Reader ' || i, '', 'CN', 'en', 'active',
               md5(i::text), 'bench', now(), now(), now(), 0, {second.pk}
        FROM generate_series(1, {readers}) AS i
        """
    )
    _sql(
        f"""
        INSERT INTO newsletter_subscriber_categories (subscriber_id, category_id)
        SELECT s.id, (ARRAY{ids})[1 + s.id % 4] FROM newsletter_subscriber s
        WHERE s.newsletter_id = {second.pk} AND s.id % 3 <> 0
        """
    )
    standin = EspStandin(keep=1).start()
    env = {
        **ENV,
        "EMAIL_BACKEND": "newsletter.sending.mailgun.EmailBackend",
        "ANYMAIL_MAILGUN_API_KEY": standin.api_key,
        "ANYMAIL_MAILGUN_API_URL": standin.api_url,
    }
    os.environ.update(ENV)
    workers = Workers(env)
    try:
        started = time.perf_counter()
        issue_start_sending(issue=issue)
        while True:
            time.sleep(0.5)
            close_old_connections()
            row = Issue.objects.values("status", "sent_count", "recipients_count").get(pk=issue.pk)
            elapsed = time.perf_counter() - started
            progress(
                f"  send: {row['sent_count']:,}/{row['recipients_count']:,} · "
                f"{row['sent_count'] / elapsed:,.0f}/s"
            )
            if row["status"] == Issue.Status.SENT or elapsed > 1800:
                break
        seconds = time.perf_counter() - started
        sys.stderr.write("\n")
        rss = workers.peak_rss()
    finally:
        workers.stop()
        standin.stop()
    row = Issue.objects.values("sent_count", "recipients_count").get(pk=issue.pk)
    result = {
        "recipients": row["recipients_count"],
        "sent": row["sent_count"],
        "seconds": round(seconds, 1),
        "per_second": round(row["sent_count"] / seconds, 1),
        "peak_worker_rss_mb": round(rss, 1),
    }
    say(f"  sent {row['sent_count']:,} in {seconds:.0f} s: {result['per_second']:,.0f}/s")
    return result


# --- the report -------------------------------------------------------------------------------


def write_report(results: dict) -> None:
    pages = results["pages"]
    searches = results["search"]
    slowest = max(pages, key=lambda row: row["ms"])
    most_queries = max(pages, key=lambda row: row["queries"])
    slowest_search = max(searches, key=lambda row: row["ms"])

    def met(ok: bool) -> str:
        return "met" if ok else "**not met**"

    table = [
        (
            "events applied by one worker",
            "≥ 2,000/s",
            f"{results['applier']['per_second']:,.0f}/s "
            f"({results['applier']['events'] / max(results['applier']['cpu_seconds'], 0.01):,.0f}"
            " per second of the worker's own CPU)",
            met(results["applier"]["per_second"] >= 2000),
        ),
        (
            "every admin list and report page",
            "< 500 ms",
            f"slowest {slowest['ms']:.0f} ms ({slowest['page']}; its own CPU "
            f"{slowest['cpu_ms']:.0f} ms)",
            met(slowest["ms"] < 500),
        ),
        (
            "queries per admin page",
            "≤ 15",
            f"most {most_queries['queries']} ({most_queries['page']})",
            met(most_queries["queries"] <= 15),
        ),
        (
            "reader search",
            "< 300 ms",
            f"slowest {slowest_search['ms']:.0f} ms ({slowest_search['page']})",
            met(slowest_search["ms"] < 300),
        ),
    ]
    if "export" in results:
        export = results["export"]
        table.append(
            (
                "CSV export (issue 11 owns it)",
                "≥ 50,000 rows/s",
                f"{export['per_second']:,.0f} rows/s ({export['rows']:,} rows)",
                met(export["per_second"] >= 50_000),
            )
        )
    if "webhook" in results:
        hook = results["webhook"]
        table.append(
            (
                "webhook ingestion, 30 connections",
                "≥ 600 requests/s",
                f"{hook['per_second']:,.0f}/s, p99 {hook['p99_ms']} ms, {hook['errors']} errors"
                + (
                    f" ({hook['requests'] / hook['server_cpu_seconds']:,.0f} per second of "
                    "the server's own CPU)"
                    if hook.get("server_cpu_seconds")
                    else ""
                ),
                met(hook["per_second"] >= 600),
            )
        )
    if "signup" in results:
        signup = results["signup"]
        table.append(
            (
                "sign-up at 30/s, rate limits on",
                "p95 < 300 ms",
                f"p95 {signup['post_p95_ms']} ms"
                + (
                    f" (the server's CPU {signup['server_cpu_seconds'] * 1000 / signup['signups']:.0f}"
                    " ms per sign-up, form and POST)"
                    if signup.get("server_cpu_seconds")
                    else ""
                ),
                met(signup["post_p95_ms"] < 300),
            )
        )
    if "send" in results:
        send = results["send"]
        table.append(
            (
                "the send (ESP path, 2 workers)",
                "—",
                f"{send['per_second']:,.0f}/s, {send['sent']:,} in {send['seconds']:.0f} s, "
                f"peak worker RSS {send['peak_worker_rss_mb']:.0f} MB",
                "",
            )
        )
    data = results["data"]
    machine = results["machine"]
    lines = [
        "# Benchmark: the whole service at scale (issue 16)",
        "",
        f"Latest run: {results['at']} · `python -m bench.scale --readers {results['readers']}`",
        "",
        f"Data: {data['readers']:,} readers, one sent issue with {data['deliveries']:,} "
        f"deliveries, {data['events']:,} tracking events; "
        + (
            f"loaded with set-based SQL in {data['load_seconds']:.0f} s (VACUUM ANALYZE "
            f"{data['vacuum_seconds']:.0f} s; the issue's tally counted from the ledger once "
            f"in {data['tally_build_seconds']:.1f} s)."
            if data["load_seconds"]
            else "loaded by an earlier run (this one ran with `--no-load`; earlier runs' "
            "sign-ups and sends added to it)."
        ),
        "",
        *([results["note"], ""] if results.get("note") else []),
        "| what | target | measured | |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in table],
        "",
        "## Admin pages (DEBUG off, logged-in superuser, median of 3 after a warm-up)",
        "",
        "`ms` is the wall time of the request; `CPU ms` the Django process's own CPU (what "
        "a less crowded machine would see of it); `DB ms` the time waiting on PostgreSQL's "
        "answers.",
        "",
        "| page | ms | CPU ms | DB ms | queries | status |",
        "|---|---:|---:|---:|---:|---:|",
        *[
            f"| {row['page']} | {row['ms']:.0f} | {row['cpu_ms']:.0f} | {row['db_ms']:.0f} "
            f"| {row['queries']} | {row['status']} |"
            for row in pages + searches
        ],
        "",
        "## Machine",
        "",
        f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB, Python "
        f"{machine['python']}, PostgreSQL and Redis on the same machine. Load average at the "
        f"start: {machine['load_average_at_start']}, at the end: "
        f"{results['load_average_at_end']}. The two cores are shared with other engineers' "
        "test suites and benchmarks running at the same time, so figures move by tens of "
        "per cent from run to run; the web figures share the cores between gunicorn, "
        "PostgreSQL and the load generator.",
        "",
        "## Rerun",
        "",
        "```sh",
        "make bench-scale                                # 1,000,000 readers",
        ".venv/bin/python -m bench.scale --readers 20000  # quick",
        ".venv/bin/python -m bench.scale --readers 20000 --skip send signup",
        "```",
        "",
        "Needs PostgreSQL on 127.0.0.1:5432 (user postgres) and Redis on 127.0.0.1:6379:",
        "`BENCH_SCALE_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/bench_scale`) and",
        "`BENCH_SCALE_REDIS_URL` (default db 8; the cache uses db 9). The web server is the",
        "Procfile's `web` command on port `BENCH_SCALE_PORT` (8765). Results:",
        "`bench/scale-results.json`; server and worker logs: `bench/out/`.",
        "",
    ]
    (BENCH / "SCALE.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--readers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=20_000, help="new events to apply")
    parser.add_argument(
        "--export-rows", type=int, default=0, help="readers to export (0: all, as admin does)"
    )
    parser.add_argument(
        "--send-readers", type=int, default=50_000, help="send the next issue to this many"
    )
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["applier", "admin", "export", "webhook", "signup", "send"],
    )
    parser.add_argument("--no-load", action="store_true", help="measure the data already there")
    parser.add_argument("--no-write", action="store_true", help="do not write SCALE.md")
    args = parser.parse_args()

    setup(args.readers)
    from bench.__main__ import machine

    info = machine()
    say(f"machine: {info['cpu']}, {info['cores']} cores, load {info['load_average_at_start']}")
    results: dict = {
        "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "readers": args.readers,
        "machine": info,
    }
    if args.no_load:
        from newsletter.models import Delivery, Issue, Subscriber, TrackingEvent

        results["data"] = {
            "readers": Subscriber.objects.count(),
            "deliveries": Delivery.objects.count(),
            "events": TrackingEvent.objects.count(),
            "issue_id": Issue.objects.get(number=48).pk,
            "load_seconds": 0,
            "vacuum_seconds": 0,
            "tally_build_seconds": 0,
        }
    else:
        say(f"loading {args.readers:,} readers …")
        results["data"] = load(args.readers)
    issue_id = results["data"]["issue_id"]
    if "applier" not in args.skip:
        say(f"event applier: {args.events:,} new events")
        results["applier"] = measure_applier(issue_id, args.events)
    if "admin" not in args.skip:
        results["pages"] = measure_pages(admin_urls(issue_id), "admin")
        results["search"] = measure_pages(search_urls(), "search")
    if "export" not in args.skip:
        results["export"] = measure_export(args.export_rows)
    if "webhook" not in args.skip or "signup" not in args.skip:
        server = WebServer()
        say(f"web server: {shlex.join(server.command[1:])}")
        results["web_server"] = shlex.join(["gunicorn", *server.command[1:]])
        try:
            if "webhook" not in args.skip:
                cpu = server.cpu_seconds()
                results["webhook"] = measure_webhook()
                results["webhook"]["server_cpu_seconds"] = round(server.cpu_seconds() - cpu, 2)
            if "signup" not in args.skip:
                cpu = server.cpu_seconds()
                results["signup"] = measure_signups()
                results["signup"]["server_cpu_seconds"] = round(server.cpu_seconds() - cpu, 2)
            say(
                "  web server's CPU: "
                + ", ".join(
                    f"{name} {results[name]['server_cpu_seconds']} s"
                    for name in ("webhook", "signup")
                    if name in results
                )
            )
        finally:
            server.stop()
    if "send" not in args.skip:
        results["send"] = measure_send(args.send_readers)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    (BENCH / "scale-results.json").write_text(json.dumps(results, indent=2) + "\n")
    if not args.no_write and "admin" not in args.skip:
        write_report(results)
        say("wrote bench/SCALE.md")


if __name__ == "__main__":
    main()
