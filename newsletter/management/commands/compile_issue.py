from django.core.management.base import BaseCommand, CommandError

from newsletter.management.commands._common import newsletter_from_option
from newsletter.services.issues import issue_compile
from newsletter.weeks import IsoWeek


class Command(BaseCommand):
    help = (
        "Draft (or update the draft of) a week's issue from published articles not carried before."
    )

    def add_arguments(self, parser):
        parser.add_argument("--newsletter", help="newsletter slug (default: the site's newsletter)")
        parser.add_argument("--week", help="ISO week, YYYY-Www (default: the current week)")

    def handle(self, *args, newsletter: str | None = None, week: str | None = None, **options):
        target = newsletter_from_option(newsletter)
        try:
            iso_week = IsoWeek.parse(week) if week else None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        result = issue_compile(newsletter=target, week=iso_week)
        self.stdout.write(result.message)
        if result.issue is not None:
            for item in result.issue.items.filter(removed=False).select_related(
                "article", "section"
            ):
                section = item.section.name if item.section else "More news"
                self.stdout.write(f"  [{section}] {item.article.title}")
