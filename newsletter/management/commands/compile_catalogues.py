"""Compile locale/*/LC_MESSAGES/*.po to .mo without GNU gettext (config/catalogues.py)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config.catalogues import CatalogueError, catalogues_compile


class Command(BaseCommand):
    help = "Compile the translation catalogues (only those changed since the last run)."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="recompile every catalogue")

    def handle(self, *args, force: bool = False, **options):
        try:
            written = catalogues_compile(
                locale_dirs=[Path(p) for p in settings.LOCALE_PATHS], force=force
            )
        except CatalogueError as exc:
            raise CommandError(str(exc)) from exc
        for path in written:
            self.stdout.write(f"compiled {path}")
        if not written:
            self.stdout.write("catalogues up to date")
