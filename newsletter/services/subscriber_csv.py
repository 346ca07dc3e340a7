"""Importing and exporting readers as CSV, for import_subscribers, export_subscribers and admin.

Each row of an import is checked on its own; a bad row writes nothing and is reported
with its row number, the good rows are imported, and a summary says what happened.
Imported readers are pending and get a confirmation email, unless the importer states
where and when they already agreed: then they are active and that note is kept as
their consent record.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from django import forms
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django_countries import countries

from articles.models import Category
from newsletter.forms import OneLineField, ReaderEmailField
from newsletter.models import ConsentRecord, Newsletter, Subscriber
from newsletter.reader_selectors import categories_offered, subscriber_by_email
from newsletter.services.subscribers import subscriber_confirmation_resend
from newsletter.suppression import is_suppressed

IMPORT_COLUMNS = ("email", "name", "organisation", "country", "categories")
# Columns of our own export that an import reads past, so an export can be re-imported.
EXPORT_ONLY_COLUMNS = ("status", "source", "signed_up_at", "confirmed_at", "unsubscribed_at")
EXPORT_COLUMNS = (*IMPORT_COLUMNS, *EXPORT_ONLY_COLUMNS)
# The failed-rows file says what was wrong in this column; the import reads past it, so
# the file can be fixed and imported again as it is.
PROBLEM_COLUMN = "problem"
# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ImportFileError(Exception):
    """The file as a whole cannot be read (encoding, header); nothing was imported."""


@dataclass(frozen=True)
class RowOutcome:
    """What one row of the file became."""

    number: int
    email: str
    became: str
    failed: bool = False


@dataclass
class ImportReport:
    dry_run: bool
    rows: int = 0
    created: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    outcomes: list[RowOutcome] = field(default_factory=list)
    failed_rows: list[dict[str, str]] = field(default_factory=list)

    def failed_csv(self) -> str:
        """Return the rows with errors as CSV, with a "problem" column, to fix and import again."""
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=[*IMPORT_COLUMNS, PROBLEM_COLUMN])
        writer.writeheader()
        for row in self.failed_rows:
            writer.writerow({key: _sheet_safe(value) for key, value in row.items()})
        return out.getvalue()

    def add_error(self, number: int, email: str, message: str, cells: dict[str, str]) -> None:
        self.errors.append((number, message))
        self.outcomes.append(RowOutcome(number, email, message, failed=True))
        self.failed_rows.append(
            {**{key: cells.get(key) or "" for key in IMPORT_COLUMNS}, PROBLEM_COLUMN: message}
        )

    def add_skip(self, number: int, email: str, message: str) -> None:
        self.skipped.append((number, message))
        self.outcomes.append(RowOutcome(number, email, message))

    def summary(self) -> str:
        verb = "would be imported" if self.dry_run else "imported"
        return (
            f"{self.rows} rows: {self.created} {verb}, {len(self.skipped)} skipped, "
            f"{len(self.errors)} with errors."
        )


class _DryRun(Exception):
    pass


def _sheet_safe(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_START) else value


def _unsheet(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) else value


class ImportRowForm(forms.Form):
    def __init__(self, *args, categories: dict[str, Category], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.known_categories = categories
        self.fields["email"] = ReaderEmailField()
        self.fields["name"] = OneLineField(max_length=100, required=False)
        self.fields["organisation"] = OneLineField(max_length=150, required=False)
        self.fields["country"] = OneLineField(max_length=2, required=False)
        self.fields["categories"] = OneLineField(max_length=1000, required=False)

    def clean_country(self) -> str:
        code = self.cleaned_data["country"].upper()
        if code and code not in dict(countries):
            raise forms.ValidationError(
                f"{code!r} is not an ISO 3166 country code (e.g. CN, KZ, IT)."
            )
        return code

    def clean_categories(self) -> list[Category]:
        chosen = []
        for part in self.cleaned_data["categories"].replace("|", ";").split(";"):
            key = part.strip().lower()
            if not key:
                continue
            if key not in self.known_categories:
                known = ", ".join(sorted({c.slug for c in self.known_categories.values()}))
                raise forms.ValidationError(f"unknown category {part.strip()!r} (known: {known}).")
            chosen.append(self.known_categories[key])
        return chosen


def _errors_text(form: forms.Form) -> str:
    return "; ".join(
        f"{name}: {' '.join(str(m) for m in messages)}" for name, messages in form.errors.items()
    )


def _reader(source: IO[bytes] | IO[str] | bytes | str) -> csv.DictReader:
    if isinstance(source, bytes):
        raw = source
    elif isinstance(source, str):
        return _dict_reader(io.StringIO(source))
    else:
        raw = source.read()
        if isinstance(raw, str):
            return _dict_reader(io.StringIO(raw))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            f"The file is not UTF-8 (byte {exc.start}): save it as “CSV UTF-8” and try again."
        ) from None
    return _dict_reader(io.StringIO(text))


def _dict_reader(handle: IO[str]) -> csv.DictReader:
    reader = csv.DictReader(handle)
    header = [(name or "").strip().lower() for name in (reader.fieldnames or [])]
    if "email" not in header:
        raise ImportFileError(
            "The first row must be a header naming the columns, with at least “email” "
            f"(columns read: {', '.join(IMPORT_COLUMNS)})."
        )
    unknown = [name for name in header if name not in (*EXPORT_COLUMNS, PROBLEM_COLUMN)]
    if unknown:
        raise ImportFileError(
            f"Unknown column(s) {', '.join(map(repr, unknown))}: use {', '.join(IMPORT_COLUMNS)}."
        )
    reader.fieldnames = header
    return reader


def subscribers_import(
    *,
    newsletter: Newsletter,
    source: IO[bytes] | IO[str] | bytes | str,
    prior_consent: str = "",
    dry_run: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import readers from CSV; return what was imported, skipped and refused, row by row.

    Row numbers count the header as row 1, as a spreadsheet shows them. Addresses
    already on the list are skipped, never changed; suppressed (erased, bounced)
    addresses are skipped and never stored; an address twice in the file is an error
    on its second row.
    """
    reader = _reader(source)
    prior_consent = " ".join(prior_consent.split())
    offered = list(categories_offered(newsletter=newsletter))
    known = {c.slug.lower(): c for c in offered} | {c.name.lower(): c for c in offered}
    report = ImportReport(dry_run=dry_run)
    seen: dict[str, int] = {}
    now = timezone.now()
    try:
        with transaction.atomic():
            for number, row in enumerate(reader, start=2):
                report.rows += 1
                if on_progress and report.rows % 100 == 0:
                    on_progress(report.rows)
                cells = {
                    key: _unsheet((value or "").strip())
                    for key, value in row.items()
                    if isinstance(key, str) and isinstance(value, str)
                }
                if None in row:
                    report.add_error(
                        number,
                        cells.get("email", ""),
                        "more cells than the header has columns.",
                        cells,
                    )
                    continue
                data = {key: cells.get(key, "") for key in IMPORT_COLUMNS}
                form = ImportRowForm(data, categories=known)
                if not form.is_valid():
                    report.add_error(number, data["email"], _errors_text(form), cells)
                    continue
                email = form.cleaned_data["email"]
                if email in seen:
                    report.add_error(
                        number, email, f"duplicate address: {email} is on row {seen[email]}.", cells
                    )
                    continue
                seen[email] = number
                if is_suppressed(newsletter=newsletter, email=email):
                    report.add_skip(
                        number, email, "suppressed (erased, bounced or complained): not imported."
                    )
                    continue
                existing = subscriber_by_email(newsletter=newsletter, email=email)
                if existing is not None:
                    report.add_skip(
                        number,
                        email,
                        f"already on the list ({existing.get_status_display().lower()}): left as it is.",
                    )
                    continue
                try:
                    with transaction.atomic():
                        _create(
                            newsletter,
                            form.cleaned_data,
                            prior_consent=prior_consent,
                            now=now,
                            confirm=not dry_run,
                        )
                except IntegrityError:
                    report.add_skip(number, email, "signed up while the import ran: left as it is.")
                    continue
                report.created += 1
                became = (
                    "new reader, active (prior consent noted)"
                    if prior_consent
                    else "new reader, pending: a confirmation email asks them to confirm"
                )
                report.outcomes.append(
                    RowOutcome(number, email, f"would be a {became}" if dry_run else f"a {became}")
                )
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return report


def _create(
    newsletter: Newsletter, data: dict, *, prior_consent: str, now, confirm: bool
) -> Subscriber:
    subscriber = Subscriber.objects.create(
        newsletter=newsletter,
        email=data["email"],
        name=data["name"],
        organisation=data["organisation"],
        country=data["country"],
        status=Subscriber.Status.ACTIVE if prior_consent else Subscriber.Status.PENDING,
        confirmed_at=now if prior_consent else None,
        source="import",
    )
    subscriber.categories.set(data["categories"])
    if prior_consent:
        ConsentRecord.objects.create(
            subscriber=subscriber,
            action=ConsentRecord.Action.IMPORT,
            form="import",
            method="import",
            note=prior_consent[:300],
        )
    elif confirm:  # a dry run must not spend the address's one email of the day
        subscriber_confirmation_resend(subscriber=subscriber)
    return subscriber


def subscribers_export(*, out: IO[str], readers: QuerySet[Subscriber]) -> int:
    """Write `readers` as CSV (erased ones never); return how many rows were written.

    Cells that a spreadsheet would run as a formula get a leading apostrophe, which
    the import takes off again.
    """
    readers = (
        readers.exclude(status=Subscriber.Status.ERASED)
        .prefetch_related("categories")
        .order_by("id")
    )
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for reader in readers.iterator(chunk_size=2000):
        writer.writerow(
            [
                _sheet_safe(value)
                for value in (
                    reader.email,
                    reader.name,
                    reader.organisation,
                    reader.country,
                    ";".join(c.slug for c in reader.categories.all()),
                    reader.status,
                    reader.source,
                    reader.created_at.isoformat(),
                    reader.confirmed_at.isoformat() if reader.confirmed_at else "",
                    reader.unsubscribed_at.isoformat() if reader.unsubscribed_at else "",
                )
            ]
        )
        count += 1
    return count
