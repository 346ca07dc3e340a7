"""Import readers from a CSV file: pending with a confirmation email, or active with prior consent."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from newsletter.management.commands._common import newsletter_from_option
from newsletter.services.subscriber_csv import (
    IMPORT_COLUMNS,
    ImportFileError,
    Outcome,
    RowResult,
    subscribers_import,
)


class Command(BaseCommand):
    help = (
        "Import readers from CSV (header row; columns "
        + ", ".join(IMPORT_COLUMNS)
        + "). Bad rows are reported by row number and import nothing; the rest are imported."
    )

    def add_arguments(self, parser):
        parser.add_argument("csv", help="path to a UTF-8 CSV file, or - for standard input")
        parser.add_argument("--newsletter", help="newsletter slug (default: the site's newsletter)")
        parser.add_argument(
            "--prior-consent",
            default="",
            metavar="NOTE",
            help="these readers already agreed: say where and when. They are imported as "
            "active with this note as their consent record. Without it they are pending and "
            "each gets a confirmation email.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="check every row, import nothing"
        )

    def _write_rows(self, header: list[str], results: list[RowResult]) -> None:
        for result in results:
            if result.outcome is Outcome.FAILED:
                self.stderr.write(f"row {result.number}: {result.detail}")
            elif result.outcome is not Outcome.CREATED:
                self.stdout.write(f"row {result.number}: {result.outcome}, {result.detail}")

    def handle(
        self, *args, csv: str, newsletter: str | None, prior_consent: str, dry_run: bool, **options
    ):
        target = newsletter_from_option(newsletter)
        opened = csv != "-"
        if not opened:
            source = sys.stdin.buffer
        else:
            path = Path(csv)
            if not path.is_file():
                raise CommandError(f"No such file: {csv}")
            source = path.open("rb")
        try:
            report = subscribers_import(
                newsletter=target,
                source=source,
                prior_consent=prior_consent,
                dry_run=dry_run,
                on_progress=lambda n, _failed: self.stdout.write(f"   {n} rows read…"),
                on_rows=self._write_rows,
            )
        except ImportFileError as exc:
            raise CommandError(str(exc)) from None
        finally:
            if opened:
                source.close()
        how = "active, with prior consent" if prior_consent else "pending, confirmation sent"
        if dry_run:
            self.stdout.write(self.style.WARNING("Dry run: nothing was imported."))
        self.stdout.write(self.style.SUCCESS(f"{report.summary()} New readers are {how}."))
        if report.errors_total:
            raise CommandError(
                f"{report.errors_total} rows were not imported: fix them and run again "
                "(rows already imported are skipped then)."
            )
