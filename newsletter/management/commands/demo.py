"""Fill an empty site with sample articles and readers, then compile and send this week's issue."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from articles.feeds import FeedError, ParsedFeed, read_feed
from articles.models import Article, Category, CategoryName
from articles.services import articles_import
from newsletter.digest import curation_read
from newsletter.management.commands._common import newsletter_from_option
from newsletter.models import Delivery, Issue, Subscriber
from newsletter.services.issues import IssueNotSendable, issue_compile, issue_start_sending
from newsletter.services.subscribers import consent_text_publish
from newsletter.weeks import current_week, issue_window

SAMPLE_FEED = Path(settings.BASE_DIR) / "articles" / "fixtures" / "sample-feed.xml"
# Issue 14: the same stories written in Chinese (paired by hreflang), and the Chinese
# edition's section names, consent text and the share of readers who chose Chinese.
SAMPLE_FEED_ZH = Path(settings.BASE_DIR) / "articles" / "fixtures" / "sample-feed-zh.json"
EDITIONS = Path(settings.BASE_DIR) / "newsletter" / "demo_data" / "editions.json"
READERS = 50
ADMIN_USER, ADMIN_PASSWORD = "admin", "belt-and-road"
FIRST_NAMES = [
    "Amina",
    "Bo",
    "Chen",
    "Dmitri",
    "Elif",
    "Farid",
    "Giulia",
    "Hui",
    "Ivan",
    "Jia",
    "Kofi",
    "Lena",
    "Minh",
    "Nadia",
    "Omar",
    "Priya",
    "Qing",
    "Rustam",
    "Sara",
    "Tariq",
    "Usha",
    "Viktor",
    "Wei",
    "Xenia",
    "Yusuf",
]
COUNTRIES = ["CN", "KZ", "PK", "ID", "IT", "GR", "ZA", "UZ", "LA", "SA", "RU", "TR"]
# Category choices by slug, cycled over the readers; [] means every section.
CHOICES = [
    [],
    ["finance"],
    ["infrastructure", "energy"],
    ["economy-trade"],
    ["finance", "economy-trade"],
    ["energy"],
    [],
    ["infrastructure"],
]


def rebase_into(feed: ParsedFeed, start: datetime, end: datetime) -> ParsedFeed:
    """Return the feed with its dates spread over [start, end), keeping their order.

    The sample is written for one fixed week; the demo moves it into the current
    issue's window so that "this week's issue" has something in it.
    """
    dates = [entry.published_at for entry in feed.entries]
    first, last = min(dates), max(dates)
    span = (last - first) or timedelta(seconds=1)
    room = end - start
    entries = [
        dataclasses.replace(
            entry, published_at=start + room * ((entry.published_at - first) / span)
        )
        for entry in feed.entries
    ]
    return dataclasses.replace(feed, entries=entries)


class Command(BaseCommand):
    help = "Import sample articles, create demo readers, compile this week's issue and send it to the outbox."

    def add_arguments(self, parser):
        parser.add_argument("--newsletter", help="newsletter slug (default: the site's newsletter)")
        parser.add_argument("--force", action="store_true", help="run even with DEBUG=false")

    def handle(self, *args, newsletter: str | None = None, force: bool = False, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "demo creates an admin with a known password; it runs only with DEBUG=true (or --force)."
            )
        target = newsletter_from_option(newsletter)
        now = timezone.now()
        week = current_week(target, now)
        start, end = issue_window(target, week)
        window_end = min(end, now)

        self.stdout.write(self.style.MIGRATE_HEADING(f"1. Articles from {SAMPLE_FEED.name}"))
        try:
            feed = read_feed(str(SAMPLE_FEED))
        except FeedError as exc:
            raise CommandError(str(exc)) from None
        feed = rebase_into(feed, start + timedelta(hours=1), window_end - timedelta(minutes=30))
        result = articles_import(
            feed=feed,
            on_progress=lambda i, n, entry: self.stdout.write(f"   [{i}/{n}] {entry.title}"),
        )
        self.stdout.write(f"   {result.created} created, {result.updated} updated.")
        self._chinese_edition(
            target, start + timedelta(hours=1), window_end - timedelta(minutes=30)
        )

        self.stdout.write(self.style.MIGRATE_HEADING(f"2. {READERS} demo readers"))
        created = self._readers(target, now)
        self.stdout.write(f"   {created} created, {READERS - created} already there.")

        self.stdout.write(self.style.MIGRATE_HEADING(f"3. Compile the issue of {week}"))
        compiled = issue_compile(newsletter=target, week=week, now=now)
        self.stdout.write(f"   {compiled.message}")

        self.stdout.write(self.style.MIGRATE_HEADING("4. Send it"))
        issue = compiled.issue or Issue.objects.filter(newsletter=target, week=str(week)).first()
        if issue is None:
            self.stdout.write("   Nothing to send.")
        else:
            try:
                queued = issue_start_sending(issue=issue)
                self.stdout.write(f"   {queued} readers queued.")
            except IssueNotSendable as exc:
                self.stdout.write(f"   {exc}")
            issue.refresh_from_db()

        self.stdout.write(self.style.MIGRATE_HEADING("5. Admin user"))
        user_model = get_user_model()
        if user_model.objects.filter(username=ADMIN_USER).exists():
            self.stdout.write(f"   {ADMIN_USER!r} exists already (password unchanged).")
        else:
            user_model.objects.create_superuser(
                ADMIN_USER, f"{ADMIN_USER}@example.com", ADMIN_PASSWORD
            )
            self.stdout.write(f"   Created {ADMIN_USER!r}.")
        self._summary(target, issue)

    def _chinese_edition(self, newsletter, start: datetime, end: datetime) -> None:
        """Import the Chinese versions and set up the Chinese edition (issue 14)."""
        feed = rebase_into(read_feed(str(SAMPLE_FEED_ZH)), start, end)
        result = articles_import(feed=feed)
        paired = Article.objects.filter(language="zh-hans", translation_of__isnull=False).count()
        self.stdout.write(
            f"   {result.imported} Chinese versions, {paired} paired with their stories."
        )
        editions = json.loads(EDITIONS.read_text(encoding="utf-8"))
        for language, names in editions["section_names"].items():
            for slug, name in names.items():
                category = Category.objects.filter(slug=slug).first()
                if category is not None:
                    CategoryName.objects.update_or_create(
                        category=category, language=language, defaults={"name": name}
                    )
        for language, text in editions["consent_texts"].items():
            if not newsletter.consent_texts.filter(language=language).exists():
                consent_text_publish(newsletter=newsletter, text=text, language=language)
        self.reader_languages = editions["reader_languages"]

    def _readers(self, newsletter, now) -> int:
        categories = {c.slug: c for c in Category.objects.all()}
        languages = getattr(self, "reader_languages", None) or [settings.LANGUAGE_CODE]
        created = 0
        for n in range(1, READERS + 1):
            email = f"reader{n:02d}@example.com"
            if Subscriber.objects.filter(newsletter=newsletter, email__iexact=email).exists():
                continue
            reader = Subscriber.objects.create(
                newsletter=newsletter,
                email=email,
                name=f"{FIRST_NAMES[n % len(FIRST_NAMES)]} Demo",
                country=COUNTRIES[n % len(COUNTRIES)],
                status=Subscriber.Status.ACTIVE,
                confirmed_at=now,
                source="demo",
                language=languages[n % len(languages)],
            )
            reader.categories.set(
                [categories[s] for s in CHOICES[n % len(CHOICES)] if s in categories]
            )
            created += 1
        return created

    def _summary(self, newsletter, issue: Issue | None) -> None:
        outbox = Path(settings.EMAIL_OUTBOX_DIR)
        emails = len(list(outbox.glob("*.eml"))) if outbox.is_dir() else 0
        self.stdout.write(self.style.MIGRATE_HEADING("\nWhat happened"))
        self.stdout.write(
            f"   Articles:  {Article.objects.count()} in {Category.objects.count()} categories"
        )
        active = Subscriber.objects.filter(newsletter=newsletter, status="active")
        self.stdout.write(
            f"   Readers:   {active.count()} active, "
            f"{active.filter(language='zh-hans').count()} of them reading in Chinese"
        )
        if issue is not None:
            counts = {
                s: issue.deliveries.filter(status=s).count()
                for s in (Delivery.Status.SENT, Delivery.Status.SKIPPED, Delivery.Status.FAILED)
            }
            self.stdout.write(
                f"   Issue:     No. {issue.number} ({issue.week}), {issue.get_status_display().lower()}: "
                f"{counts['sent']} sent, {counts['skipped']} skipped, {counts['failed']} failed"
            )
            coverage = curation_read(issue).coverage()
            self.stdout.write(
                "   Editions:  "
                + ", ".join(
                    f"{code}: {n} of {total} stories" for code, (n, total) in coverage.items()
                )
            )
        self.stdout.write(f"   Outbox:    {emails} .eml files in {outbox}/")
        if settings.EMAIL_BACKEND == "newsletter.backends.OutboxBackend":
            self.stdout.write(
                "              open one with any mail client, or: less var/outbox/*.eml"
            )
        self.stdout.write(
            f"   Admin:     {settings.SITE_URL}/admin/  user {ADMIN_USER!r}, password {ADMIN_PASSWORD!r}"
        )
        self.stdout.write(f"   Archive:   {settings.SITE_URL}/newsletter/archive/")
        self.stdout.write(f"   中文版:    {settings.SITE_URL}/zh-hans/newsletter/archive/")
        self.stdout.write("   Serve it:  make serve   (then open the links above)")
