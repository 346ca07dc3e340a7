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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO

from django import forms
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.utils import timezone
from django_countries import countries

from articles.models import Category
from config.cleaning import clean_text
from newsletter.forms import OneLineField, ReaderEmailField
from newsletter.models import ConsentRecord, Newsletter, Subscriber, Suppression
from newsletter.selectors.subscribers import categories_offered
from newsletter.services.subscribers import subscriber_confirmation_resend
from newsletter.suppression import email_hash

IMPORT_COLUMNS = ("email", "name", "organisation", "country", "categories")
# Columns of our own export that an import reads past, so an export can be re-imported.
EXPORT_ONLY_COLUMNS = ("status", "source", "signed_up_at", "confirmed_at", "unsubscribed_at")
EXPORT_COLUMNS = (*IMPORT_COLUMNS, *EXPORT_ONLY_COLUMNS)
# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ImportFileError(Exception):
    """The file as a whole cannot be read (encoding, header); nothing was imported."""


@dataclass
class ImportReport:
    dry_run: bool
    rows: int = 0
    created: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)

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
    def __init__(
        self,
        *args,
        categories: dict[str, Category],
        country_codes: frozenset[str] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.known_categories = categories
        self.country_codes = country_codes or frozenset(dict(countries))
        self.fields["email"] = ReaderEmailField()
        self.fields["name"] = OneLineField(max_length=100, required=False)
        self.fields["organisation"] = OneLineField(max_length=150, required=False)
        self.fields["country"] = OneLineField(max_length=2, required=False)
        self.fields["categories"] = OneLineField(max_length=1000, required=False)

    def rebind(self, data: dict) -> None:
        """Check another row with the same fields (full_clean starts afresh)."""
        self.data, self.is_bound, self._errors = data, True, None
        self._bound_fields_cache = {}

    def clean_country(self) -> str:
        code = self.cleaned_data["country"].upper()
        if code and code not in self.country_codes:
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


def _lines(source: IO[bytes] | IO[str] | bytes | str) -> Iterator[str]:
    """Yield the file's lines as text, without NUL and other control characters.

    A file is read line by line, never whole, so an import's memory does not grow with
    the file. A cell of any length is read whole (the upload's size cap bounds it), so
    one too long for its column is an error on its row (the row form's max_length),
    not the csv module's "field larger than field limit" for the whole file.
    """
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    elif isinstance(source, str):
        source = io.StringIO(source)
    text = source
    if not isinstance(source, io.TextIOBase) and not isinstance(source.read(0), str):
        text = io.TextIOWrapper(source, encoding="utf-8-sig", newline="")
    number = 0
    try:
        for number, line in enumerate(text, start=1):  # noqa: B007 - read after the loop
            yield clean_text(line)
    except UnicodeDecodeError:
        raise ImportFileError(
            f"The file is not UTF-8 (line {number + 1}): save it as “CSV UTF-8” and try again."
        ) from None


def _reader(source: IO[bytes] | IO[str] | bytes | str) -> csv.DictReader:
    return _dict_reader(_lines(source))


def read_rows(
    source: IO[bytes] | IO[str] | bytes | str,
) -> Iterator[tuple[int, list[str], list[str]]]:
    """Yield (row number, header, cells) of a CSV as an import numbers its rows."""
    reader = csv.reader(_lines(source))
    header = next(reader, [])
    for number, cells in enumerate(reader, start=2):
        yield number, header, cells


def _dict_reader(handle: Iterator[str]) -> csv.DictReader:
    reader = csv.DictReader(handle)
    header = [(name or "").strip().lower() for name in (reader.fieldnames or [])]
    if "email" not in header:
        raise ImportFileError(
            "The first row must be a header naming the columns, with at least “email” "
            f"(columns read: {', '.join(IMPORT_COLUMNS)})."
        )
    unknown = [name for name in header if name not in EXPORT_COLUMNS]
    if unknown:
        raise ImportFileError(
            f"Unknown column(s) {', '.join(map(repr, unknown))}: use {', '.join(IMPORT_COLUMNS)}."
        )
    reader.fieldnames = header
    return reader


IMPORT_CHUNK = 1000  # rows checked against the list and written together


def subscribers_import(
    *,
    newsletter: Newsletter,
    source: IO[bytes] | IO[str] | bytes | str,
    prior_consent: str = "",
    dry_run: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import readers from CSV; return what was imported, skipped and refused, row by row.

    Row numbers count the header as row 1, as a spreadsheet shows them. Addresses
    already on the list are skipped, never changed; suppressed (erased, bounced)
    addresses are skipped and never stored; an address twice in the file is an error
    on its second row; a cell longer than its field is an error on its row. Valid rows
    are checked against the list and written IMPORT_CHUNK at a time (a few queries per
    chunk, not per row), so a million rows take minutes, not hours.
    """
    reader = _reader(source)
    prior_consent = " ".join(prior_consent.split())
    offered = list(categories_offered(newsletter=newsletter))
    known = {c.slug.lower(): c for c in offered} | {c.name.lower(): c for c in offered}
    codes = frozenset(dict(countries))  # once: django-countries translates every name
    # One form checks every row: building five fields per row was most of an import's time.
    form = ImportRowForm(categories=known, country_codes=codes)
    report = ImportReport(dry_run=dry_run)
    seen: dict[str, int] = {}
    chunk: list[tuple[int, dict]] = []
    now = timezone.now()

    def flush() -> None:
        _import_chunk(
            newsletter,
            chunk,
            report,
            prior_consent=prior_consent,
            now=now,
            confirm=not dry_run,
        )
        chunk.clear()

    try:
        with transaction.atomic():
            for number, row in enumerate(reader, start=2):
                report.rows += 1
                if on_progress and report.rows % 500 == 0:
                    on_progress(report.rows, len(report.errors))
                if None in row:
                    report.errors.append((number, "more cells than the header has columns."))
                    continue
                data = {key: _unsheet((row.get(key) or "").strip()) for key in IMPORT_COLUMNS}
                form.rebind(data)
                if not form.is_valid():
                    report.errors.append((number, _errors_text(form)))
                    continue
                email = form.cleaned_data["email"]
                if email in seen:
                    report.errors.append(
                        (number, f"duplicate address: {email} is on row {seen[email]}.")
                    )
                    continue
                seen[email] = number
                chunk.append((number, form.cleaned_data))
                if len(chunk) >= IMPORT_CHUNK:
                    flush()
            flush()
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    report.skipped.sort()
    return report


def _import_chunk(
    newsletter: Newsletter,
    rows: list[tuple[int, dict]],
    report: ImportReport,
    *,
    prior_consent: str,
    now,
    confirm: bool,
) -> None:
    if not rows:
        return
    hashes = {number: email_hash(data["email"]) for number, data in rows}
    suppressed = set(
        Suppression.objects.filter(
            newsletter=newsletter, email_hash__in=hashes.values()
        ).values_list("email_hash", flat=True)
    )
    existing = dict(
        Subscriber.objects.annotate(email_lower=Lower("email"))
        .filter(newsletter=newsletter, email_lower__in=[data["email"] for _, data in rows])
        .values_list("email_lower", "status")
    )
    labels = dict(Subscriber.Status.choices)
    new: list[tuple[int, dict]] = []
    for number, data in rows:
        if hashes[number] in suppressed:
            report.skipped.append(
                (number, "suppressed (erased, bounced or complained): not imported.")
            )
        elif data["email"] in existing:
            status = str(labels.get(existing[data["email"]], existing[data["email"]])).lower()
            report.skipped.append((number, f"already on the list ({status}): left as it is."))
        else:
            new.append((number, data))
    try:
        with transaction.atomic():
            created = _create_many(newsletter, [data for _, data in new], prior_consent, now)
    except IntegrityError:
        # Someone signed up while the import ran: this chunk one row at a time.
        created = []
        for number, data in new:
            try:
                with transaction.atomic():
                    created.append(_create_many(newsletter, [data], prior_consent, now)[0])
            except IntegrityError:
                report.skipped.append((number, "signed up while the import ran: left as it is."))
    report.created += len(created)
    if confirm and not prior_consent:  # a dry run must not spend the address's one email of the day
        for subscriber in created:
            subscriber_confirmation_resend(subscriber=subscriber)


def _create_many(
    newsletter: Newsletter, rows: list[dict], prior_consent: str, now
) -> list[Subscriber]:
    subscribers = Subscriber.objects.bulk_create(
        [
            Subscriber(
                newsletter=newsletter,
                email=data["email"],
                name=data["name"],
                organisation=data["organisation"],
                country=data["country"],
                status=Subscriber.Status.ACTIVE if prior_consent else Subscriber.Status.PENDING,
                confirmed_at=now if prior_consent else None,
                source="import",
            )
            for data in rows
        ]
    )
    through = Subscriber.categories.through
    through.objects.bulk_create(
        [
            through(subscriber_id=subscriber.pk, category_id=category.pk)
            for subscriber, data in zip(subscribers, rows, strict=True)
            for category in dict.fromkeys(data["categories"])
        ]
    )
    if prior_consent:
        ConsentRecord.objects.bulk_create(
            [
                ConsentRecord(
                    subscriber=subscriber,
                    action=ConsentRecord.Action.IMPORT,
                    form="import",
                    method="import",
                    note=prior_consent[:300],
                )
                for subscriber in subscribers
            ]
        )
    return subscribers


# A UTF-8 byte-order mark opens every exported file: Excel on Chinese Windows reads a
# CSV without one as GBK and garbles every Chinese name (issue 14). The import reads
# utf-8-sig, so a round trip is unchanged.
UTF8_BOM = "\ufeff"


def subscribers_export(
    *,
    out: IO[str],
    readers: QuerySet[Subscriber],
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Write `readers` as CSV (erased ones never); return how many rows were written.

    Cells that a spreadsheet would run as a formula get a leading apostrophe, which
    the import takes off again. Files for people (admin download, `-o FILE`) start
    with UTF8_BOM.
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
        if on_progress and count % 10_000 == 0:
            on_progress(count)
    return count
