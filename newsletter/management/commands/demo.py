"""Fill an empty site: last week's issue sent, this week's draft (fed by a feed source) to curate."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from articles.feeds import FeedError, ParsedFeed, read_feed
from articles.models import Article, Category, FeedSource
from articles.services import articles_import
from articles.tasks import fetch_feed
from newsletter.management.commands._common import newsletter_from_option
from newsletter.models import Delivery, Issue, Subscriber
from newsletter.services.issues import IssueNotSendable, issue_compile, issue_start_sending
from newsletter.weeks import IsoWeek, current_week, issue_window

SAMPLE_FEED = Path(settings.BASE_DIR) / "articles" / "fixtures" / "sample-feed.xml"
DEMO_FEED_FILE = "portal-demo.json"
NEWSROOM_GROUPS = ["Editors", "Publishers"]
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


def feed_json(feed: ParsedFeed) -> str:
    """Return `feed` as a JSON Feed document, the format a portal's feed file may take."""
    items = [
        {
            "id": entry.guid,
            "url": entry.url,
            "title": entry.title,
            "summary": entry.abstract,
            "content_html": entry.body,
            "date_published": entry.published_at.isoformat(),
            "tags": list(entry.keywords),
            "_belt_and_road": {
                "category": entry.category or "",
                "source": entry.source,
                "related": list(entry.related_urls),
            },
        }
        for entry in feed.entries
    ]
    document = {"version": "https://jsonfeed.org/version/1.1", "title": feed.title, "items": items}
    return json.dumps(document, ensure_ascii=False, indent=1)


class Command(BaseCommand):
    help = (
        "Import sample articles and readers, send last week's issue to the outbox and leave "
        "this week's draft, fed by a demo feed source, to curate."
    )

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
        this_week = current_week(target, now)
        last_week = IsoWeek.of(this_week.monday() - timedelta(days=7))
        last_start, last_end = issue_window(target, last_week)
        try:
            sample = read_feed(str(SAMPLE_FEED))
        except FeedError as exc:
            raise CommandError(str(exc)) from None
        # The sample is one fixed week: its older half becomes last week's news, the
        # newer half this week's, so the archive has an issue and the draft has work.
        entries = sorted(sample.entries, key=lambda e: e.published_at)
        half = len(entries) // 2
        older = dataclasses.replace(sample, entries=entries[:half])
        newer = dataclasses.replace(sample, entries=entries[half:])

        self.stdout.write(self.style.MIGRATE_HEADING("1. Last week's articles"))
        older = rebase_into(older, last_start + timedelta(hours=1), last_end - timedelta(hours=1))
        result = articles_import(
            feed=older,
            on_progress=lambda i, n, entry: self.stdout.write(f"   [{i}/{n}] {entry.title}"),
        )
        self.stdout.write(
            f"   {result.created} created, {result.updated} updated, {result.unchanged} unchanged."
        )
        self._categories_on()

        self.stdout.write(self.style.MIGRATE_HEADING(f"2. {READERS} demo readers"))
        created = self._readers(target, now)
        self.stdout.write(f"   {created} created, {READERS - created} already there.")

        self.stdout.write(self.style.MIGRATE_HEADING(f"3. Last week's issue ({last_week}), sent"))
        compiled = issue_compile(newsletter=target, week=last_week, now=last_end)
        self.stdout.write(f"   {compiled.message}")
        issue = (
            compiled.issue or Issue.objects.filter(newsletter=target, week=str(last_week)).first()
        )
        if issue is None:
            self.stdout.write("   Nothing to send.")
        else:
            try:
                queued = issue_start_sending(issue=issue)
                self.stdout.write(f"   {queued} readers queued.")
            except IssueNotSendable as exc:
                self.stdout.write(f"   {exc}")
            issue.refresh_from_db()

        self.stdout.write(self.style.MIGRATE_HEADING("4. This week's articles, from a feed source"))
        source = self._feed_source(newer, start=last_end, now=now)
        fetch_feed.apply(args=[source.pk])  # the scheduler's own task, run here once
        fetch = source.fetches.order_by("-at", "-id").first()
        self.stdout.write(
            f"   {source.name} ({source.url}): {fetch.new} new, {fetch.updated} updated, "
            f"{fetch.refused} refused{'; ' + fetch.error if fetch.error else ''}."
        )
        self._categories_on()

        self.stdout.write(self.style.MIGRATE_HEADING(f"5. This week's draft ({this_week})"))
        draft = issue_compile(newsletter=target, week=this_week, now=now)
        self.stdout.write(f"   {draft.message} It waits for an editor in admin.")

        self.stdout.write(self.style.MIGRATE_HEADING("6. Admin user"))
        self._admin()
        self._summary(target, issue, draft.issue)

    def _categories_on(self) -> None:
        """Turn on the sample's categories, as an editor would after a first import."""
        count = Category.objects.filter(enabled=False).update(enabled=True)
        if count:
            self.stdout.write(f"   Turned on {count} new categories (an editor's choice).")

    def _feed_source(self, feed: ParsedFeed, *, start: datetime, now: datetime) -> FeedSource:
        """Write this week's half of the sample to FEED_FILE_DIR and point a source at it.

        The portal's real feed is a URL; the demo's is a file, which a source may read
        only inside FEED_FILE_DIR. Its dates are moved to between last week's send and
        now, as this week's news would be.
        """
        if not settings.FEED_FILE_DIR:
            raise CommandError("FEED_FILE_DIR is empty: the demo needs it for its feed file.")
        span = now - start
        feed = rebase_into(feed, start + span * 0.1, now - span * 0.1)
        directory = Path(settings.FEED_FILE_DIR)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / DEMO_FEED_FILE).write_text(feed_json(feed), encoding="utf-8")
        source, _ = FeedSource.objects.update_or_create(
            url=f"file:{DEMO_FEED_FILE}",
            defaults={"name": "Belt & Road portal (demo)", "language": "en", "is_active": True},
        )
        return source

    def _admin(self) -> None:
        user_model = get_user_model()
        user = user_model.objects.filter(username=ADMIN_USER).first()
        if user is not None:
            self.stdout.write(f"   {ADMIN_USER!r} exists already (password unchanged).")
        else:
            user = user_model.objects.create_superuser(
                ADMIN_USER, f"{ADMIN_USER}@example.com", ADMIN_PASSWORD
            )
            self.stdout.write(f"   Created {ADMIN_USER!r}.")
        # In both groups, so draft notices and reader questions reach someone.
        groups = Group.objects.filter(name__in=NEWSROOM_GROUPS)
        user.groups.add(*groups)
        self.stdout.write(f"   In {', '.join(g.name for g in groups)}.")

    def _readers(self, newsletter, now) -> int:
        categories = {c.slug: c for c in Category.objects.all()}
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
            )
            reader.categories.set(
                [categories[s] for s in CHOICES[n % len(CHOICES)] if s in categories]
            )
            created += 1
        return created

    def _summary(self, newsletter, issue: Issue | None, draft: Issue | None) -> None:
        outbox = Path(settings.EMAIL_OUTBOX_DIR)
        emails = len(list(outbox.glob("*.eml"))) if outbox.is_dir() else 0
        self.stdout.write(self.style.MIGRATE_HEADING("\nWhat happened"))
        self.stdout.write(
            f"   Articles:  {Article.objects.count()} in {Category.objects.count()} categories"
        )
        self.stdout.write(
            f"   Readers:   {Subscriber.objects.filter(newsletter=newsletter, status='active').count()} active"
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
        if draft is not None:
            count = draft.items.filter(removed=False).count()
            self.stdout.write(
                f"   Draft:     No. {draft.number} ({draft.week}), {count} articles to curate: "
                f"{settings.SITE_URL}/admin/newsletter/issue/{draft.pk}/change/"
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
        self.stdout.write("   Serve it:  make serve   (then open the links above)")
