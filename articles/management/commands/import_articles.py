from django.core.management.base import BaseCommand, CommandError

from articles.feeds import FeedEntry, FeedError
from articles.services import articles_import_feed


class Command(BaseCommand):
    help = "Import articles from an RSS 2.0, Atom or JSON Feed URL or file. Re-running updates, never duplicates."

    def add_arguments(self, parser):
        parser.add_argument("source", help="http(s) URL or path of the feed")

    def handle(self, *args, source: str, **options):
        def progress(index: int, total: int, entry: FeedEntry) -> None:
            self.stdout.write(f"[{index}/{total}] {entry.title}")

        try:
            result = articles_import_feed(source=source, on_progress=progress)
        except FeedError as exc:
            raise CommandError(str(exc)) from None
        for error in result.errors:
            self.stderr.write(self.style.ERROR(f"refused: {error}"))
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.created} created, {result.updated} updated, "
                f"{result.unchanged} unchanged, {len(result.errors)} refused."
            )
        )
        if result.errors and not result.imported:
            raise CommandError("No item of the feed could be imported.")
