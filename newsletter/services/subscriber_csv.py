"""Importing and exporting readers as CSV, for import_subscribers, export_subscribers and admin.

Each row of an import is checked on its own; a bad row writes nothing and is reported
with its row number, the good rows are imported, and a summary says what happened,
with every row's outcome handed to the caller (admin's job writes them to a report).
Imported readers are pending and get a confirmation email, unless the importer states
where and when they already agreed: then they are active and that note is kept as
their consent record. Rows are checked here, in Python, and merged into the list a
chunk at a time by subscriber_merge, in sets (a million rows in minutes).
"""

from __future__ import annotations

import codecs
import csv
import io
import queue
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO, TypeVar

from django import forms
from django.db.models import QuerySet
from django.utils import timezone, translation
from django_countries import countries

from articles.models import Category
from config.cleaning import clean_text
from newsletter.forms import OneLineField, ReaderEmailField
from newsletter.models import Newsletter, Subscriber
from newsletter.selectors.subscribers import categories_offered
from newsletter.services import subscriber_merge
from newsletter.services.subscriber_merge import ImportStage, StagedRow
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


class Outcome(StrEnum):
    """What a row of an import became. An import never updates a reader already on the list."""

    CREATED = "created"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class RowResult:
    """One row's outcome; a failed row keeps its cells as read, to write back for fixing."""

    number: int
    email: str
    outcome: Outcome
    detail: str
    cells: tuple[str, ...] = ()


REPORT_KEEP = 1000  # errors and skips kept in memory for a page; every row goes to `on_rows`


@dataclass
class ImportReport:
    dry_run: bool
    rows: int = 0
    created: int = 0
    unchanged: int = 0
    skipped_total: int = 0
    errors_total: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)  # the first REPORT_KEEP
    errors: list[tuple[int, str]] = field(default_factory=list)  # the first REPORT_KEEP

    def add(self, result: RowResult) -> None:
        if result.outcome is Outcome.CREATED:
            self.created += 1
        elif result.outcome is Outcome.UNCHANGED:
            self.unchanged += 1
        elif result.outcome is Outcome.SKIPPED:
            self.skipped_total += 1
            if len(self.skipped) < REPORT_KEEP:
                self.skipped.append((result.number, result.detail))
        else:
            self.errors_total += 1
            if len(self.errors) < REPORT_KEEP:
                self.errors.append((result.number, result.detail))

    def summary(self) -> str:
        verb = "would be imported" if self.dry_run else "imported"
        unchanged = f"{self.unchanged} unchanged, " if self.unchanged else ""
        return (
            f"{self.rows} rows: {self.created} {verb}, {unchanged}{self.skipped_total} skipped, "
            f"{self.errors_total} with errors."
        )


def sheet_safe(value: str) -> str:
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

    def check(self, data: dict[str, str]) -> str:
        """Check one row with these fields; return what is wrong with it, or "" (then read cleaned_data).

        The fields' own clean() and this form's clean_<field>, as full_clean runs them,
        without building bound fields and an error dict per row: that was most of the
        time of a million-row import.
        """
        self.cleaned_data = {}
        problems = []
        for name, form_field in self.fields.items():
            try:
                self.cleaned_data[name] = form_field.clean(data.get(name, ""))
                if clean := getattr(self, f"clean_{name}", None):
                    self.cleaned_data[name] = clean()
            except forms.ValidationError as error:
                problems.append(f"{name}: {' '.join(error.messages)}")
        return "; ".join(problems)

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
        raise _not_utf8(number + 1) from None


def _not_utf8(line: int) -> ImportFileError:
    return ImportFileError(
        f"The file is not UTF-8 (line {line}): save it as “CSV UTF-8” and try again."
    )


def _check_utf8(source: IO[bytes]) -> None:
    """Refuse a file that is not UTF-8 before any row is written, and rewind it.

    An import commits chunk by chunk, so a bad byte at row 900,000 must be found
    before row 2 is written, or the file would be half imported. A stream that cannot
    be rewound (standard input) is checked as it is read instead.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    while block := source.read(1 << 20):
        try:
            decoder.decode(block)
        except UnicodeDecodeError as exc:
            line += block.count(b"\n", 0, exc.start)
            raise _not_utf8(line) from None
        line += block.count(b"\n")
    try:
        decoder.decode(b"", final=True)  # a character cut off at the end
    except UnicodeDecodeError:
        raise _not_utf8(line) from None
    source.seek(0)


def read_rows(
    source: IO[bytes] | IO[str] | bytes | str,
) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """Return the checked header and the (row number, cells) of each row after it.

    Row numbers count records as a spreadsheet shows them (the header is row 1); a
    blank line is a row of its own and is passed over.
    """
    reader = csv.reader(_lines(source))
    header = [(name or "").strip().lower() for name in next(reader, [])]
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
    numbered = ((number, cells) for number, cells in enumerate(reader, start=2) if cells)
    return header, numbered


IMPORT_CHUNK = 10_000  # rows merged into the list per statement set and transaction

_STAGE_TEXT = {
    subscriber_merge.DUPLICATE: "duplicate address: {email} is on row {first_row}.",
    subscriber_merge.SUPPRESSED: "suppressed (erased, bounced or complained): not imported.",
    subscriber_merge.EXISTING: "already on the list ({status}): left as it is.",
    subscriber_merge.RACED: "signed up while the import ran: left as it is.",
    subscriber_merge.UNCHANGED: "already on the list ({status}) with these details: nothing to change.",
}
_STAGE_OUTCOME = {
    subscriber_merge.CREATED: Outcome.CREATED,
    subscriber_merge.UNCHANGED: Outcome.UNCHANGED,
    subscriber_merge.DUPLICATE: Outcome.FAILED,
}


@dataclass
class _Chunk:
    """Rows read and checked, ready to merge: the good ones staged, the rest failed."""

    rows: int = 0
    staged: list[StagedRow] = field(default_factory=list)
    failed: list[RowResult] = field(default_factory=list)


def _checked_chunks(
    records: Iterator[tuple[int, list[str]]], header: list[str], form: ImportRowForm
) -> Iterator[_Chunk]:
    """Yield the file's rows checked, IMPORT_CHUNK rows at a time. Touches no database.

    An address twice in one chunk is caught here; twice across chunks, by the merge.
    """
    columns = {name: header.index(name) for name in IMPORT_COLUMNS if name in header}
    chunk = _Chunk()
    in_chunk: dict[str, int] = {}

    def fail(number: int, email: str, detail: str, cells: list[str]) -> None:
        chunk.failed.append(RowResult(number, email, Outcome.FAILED, detail, tuple(cells)))

    for number, cells in records:
        if len(chunk.staged) + len(chunk.failed) >= IMPORT_CHUNK:
            yield chunk
            chunk, in_chunk = _Chunk(), {}
        chunk.rows += 1
        data = {
            key: _unsheet(cells[index].strip()) if index < len(cells) else ""
            for key, index in columns.items()
        }
        if len(cells) > len(header):
            fail(number, data.get("email", ""), "more cells than the header has columns.", cells)
            continue
        if problem := form.check(data):
            fail(number, data.get("email", ""), problem, cells)
            continue
        clean = form.cleaned_data
        email = clean["email"]
        if email in in_chunk:
            fail(number, email, f"duplicate address: {email} is on row {in_chunk[email]}.", cells)
            continue
        in_chunk[email] = number
        chunk.staged.append(
            StagedRow(
                number=number,
                email=email,
                name=clean["name"],
                organisation=clean["organisation"],
                country=clean["country"],
                category_ids=tuple(dict.fromkeys(c.pk for c in clean["categories"])),
                email_hash=email_hash(email),
                token_secret=secrets.token_hex(16),  # as Subscriber's own default
                cells=tuple(cells),
            )
        )
    if chunk.rows:
        yield chunk


_T = TypeVar("_T")


@contextmanager
def _read_ahead(items: Iterator[_T], *, depth: int = 2) -> Iterator[Iterator[_T]]:
    """Produce `items` in a thread, `depth` ahead of the caller.

    Checking rows is Python and holds the GIL; merging them is the database's work,
    while this process waits on the socket with the GIL released. On two cores the two
    overlap, and an import goes nearly twice as fast. The producer touches no database
    (Django's connections are per thread); its exception is raised in the caller, and
    it stops when the caller leaves.
    """
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()
    language = translation.get_language()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            with translation.override(language):  # row errors in the caller's language
                for item in items:
                    if not put(item):
                        return
            put(end)
        except BaseException as error:  # handed to the caller, raised there
            put(error)

    def consume() -> Iterator[_T]:
        while (item := handoff.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item

    producer = threading.Thread(target=produce, name="csv-import-rows", daemon=True)
    producer.start()
    try:
        yield consume()
    finally:
        stop.set()
        producer.join()


def subscribers_import(
    *,
    newsletter: Newsletter,
    source: IO[bytes] | IO[str] | bytes | str,
    prior_consent: str = "",
    dry_run: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    on_rows: Callable[[list[str], list[RowResult]], None] | None = None,
) -> ImportReport:
    """Import readers from CSV; return the counts, and hand every row's outcome to `on_rows`.

    Row numbers count the header as row 1, as a spreadsheet shows them. Addresses
    already on the list are never changed (unchanged when the reader already has the
    row's details, skipped otherwise); suppressed (erased, bounced) addresses are
    skipped and never stored; an address twice in the file is an error on its second
    row; a cell longer than its field is an error on its row. Rows are checked in
    Python and merged IMPORT_CHUNK at a time by subscriber_merge, in sets; each chunk
    is committed on its own, and `on_progress(rows, failed)` and `on_rows(header,
    outcomes)` are called after it.
    """
    if hasattr(source, "seekable") and source.seekable() and not isinstance(source, io.TextIOBase):
        _check_utf8(source)
    header, records = read_rows(source)
    prior_consent = " ".join(prior_consent.split())
    offered = list(categories_offered(newsletter=newsletter))
    known = {c.slug.lower(): c for c in offered} | {c.name.lower(): c for c in offered}
    codes = frozenset(dict(countries))  # once: django-countries translates every name
    # One form checks every row: building five fields per row was most of an import's time.
    form = ImportRowForm(categories=known, country_codes=codes)
    report = ImportReport(dry_run=dry_run)
    labels = {value: str(label).lower() for value, label in Subscriber.Status.choices}
    if dry_run:
        created_detail = "would be imported"
    elif prior_consent:
        created_detail = "active, with the prior consent note"
    else:
        created_detail = "pending, asked to confirm by email"

    def merge(stage: ImportStage, chunk: _Chunk) -> None:
        report.rows += chunk.rows
        staged = {row.number: row for row in chunk.staged}
        results = chunk.failed
        created: list[int] = []
        for merged in stage.merge(chunk.staged):
            row = staged[merged.number]
            outcome = _STAGE_OUTCOME.get(merged.kind, Outcome.SKIPPED)
            if merged.kind == subscriber_merge.CREATED:
                detail = created_detail
                created.append(merged.subscriber_id)
            else:
                status = labels.get(merged.status, merged.status)
                detail = _STAGE_TEXT[merged.kind].format(
                    email=row.email, first_row=merged.first_row, status=status
                )
            cells = row.cells if outcome is Outcome.FAILED else ()
            results.append(RowResult(merged.number, row.email, outcome, detail, cells))
        results.sort(key=lambda result: result.number)
        for result in results:
            report.add(result)
        if on_rows:
            on_rows(header, results)
        if created and not dry_run and not prior_consent:
            # A dry run must not spend the address's one email of the day.
            readers = Subscriber.objects.filter(pk__in=created).select_related("newsletter")
            for subscriber in readers.order_by("pk"):
                subscriber_confirmation_resend(subscriber=subscriber)
        if on_progress:
            on_progress(report.rows, report.errors_total)

    with (
        ImportStage(
            newsletter=newsletter,
            prior_consent=prior_consent,
            confirmed_at=timezone.now(),
            write=not dry_run,
        ) as stage,
        _read_ahead(_checked_chunks(records, header, form)) as chunks,
    ):
        for chunk in chunks:
            merge(stage, chunk)
    return report


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
                sheet_safe(value)
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
