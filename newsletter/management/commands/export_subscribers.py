"""Export readers as CSV (the same columns import_subscribers reads), erased ones never."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from newsletter.management.commands._common import newsletter_from_option
from newsletter.models import Subscriber
from newsletter.services.subscriber_csv import UTF8_BOM, subscribers_export


class Command(BaseCommand):
    help = "Write readers as CSV to standard output or --output FILE."

    def add_arguments(self, parser):
        parser.add_argument("--newsletter", help="newsletter slug (default: the site's newsletter)")
        parser.add_argument(
            "--status",
            action="append",
            default=[],
            choices=[s for s in Subscriber.Status.values if s != Subscriber.Status.ERASED],
            help="only readers in this status (repeatable; default: all but erased)",
        )
        parser.add_argument("--output", "-o", help="file to write (default: standard output)")

    def handle(
        self, *args, newsletter: str | None, status: list[str], output: str | None, **options
    ):
        target = newsletter_from_option(newsletter)
        try:
            handle = open(output, "w", newline="", encoding="utf-8") if output else self.stdout  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc.strerror}") from None
        try:
            readers = Subscriber.objects.filter(newsletter=target)
            if status:
                readers = readers.filter(status__in=status)
            if output:
                handle.write(UTF8_BOM)  # a file is for a spreadsheet: Excel needs the BOM
            count = subscribers_export(out=handle, readers=readers)
        finally:
            if output:
                handle.close()
        self.stderr.write(f"{count} readers exported{f' to {output}' if output else ''}.")
