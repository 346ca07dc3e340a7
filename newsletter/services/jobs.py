"""Background jobs for admin: importing and exporting readers as CSV, off the web request.

A 10 MB import or a million-row export outlasts any proxy's timeout, so admin only
starts a job (`job_import_start`, `job_export_start`) and shows its progress page;
a Celery task runs it (`job_run`). One small mechanism serves both: a BackgroundJob
row, live counters in the cache (cheaper than writing the row after every chunk), and
result files under MEDIA_ROOT/jobs/ (no URL serves them; admin streams them to staff)
— the export, or for an import the rows it refused with the reason beside each and a
report of what every row became (created, unchanged, skipped or failed, and why).

The export streams: on PostgreSQL one `COPY (SELECT …) TO STDOUT` writes the rows
straight into the file, the spreadsheet-formula guard and the categories done in
SQL; elsewhere the same columns come from `subscribers_export` in chunks. Memory
stays flat at any size; bench/csv_jobs.py measures both directions.
"""

from __future__ import annotations

import csv
import io
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.cache import cache
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from articles.models import Category
from newsletter.models import BackgroundJob, Newsletter, Subscriber
from newsletter.services.subscriber_csv import (
    EXPORT_COLUMNS,
    FORMULA_START,
    UTF8_BOM,
    ImportFileError,
    Outcome,
    RowResult,
    sheet_safe,
    subscribers_export,
    subscribers_import,
)

logger = logging.getLogger(__name__)

PROGRESS_TTL = 7 * 86400
# Filters of the readers' admin list that an export of "all matching" carries over.
EXPORT_FILTERS = (
    "status__exact",
    "newsletter__id__exact",
    "country",
    "categories__id__exact",
    "created_at__gte",
    "created_at__lt",
)


def jobs_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "jobs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def job_file(job: BackgroundJob) -> Path | None:
    """Return the job's result file (the export, or the failed rows), if it has one."""
    if not job.output_path:
        return None
    path = jobs_dir() / Path(job.output_path).name
    return path if path.is_file() else None


def _enqueue(job: BackgroundJob) -> None:
    from newsletter.tasks import run_background_job  # tasks import services

    transaction.on_commit(lambda: run_background_job.delay(job.pk))


# --- Starting -----------------------------------------------------------------------------


def job_import_start(
    *, user, upload: UploadedFile, newsletter: Newsletter, prior_consent: str, dry_run: bool
) -> BackgroundJob:
    """Keep the uploaded CSV and enqueue its import; return the job to follow."""
    name = f"{uuid.uuid4().hex}.csv"
    lines = 0
    with open(jobs_dir() / name, "wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
            lines += chunk.count(b"\n")
    job = BackgroundJob.objects.create(
        kind=BackgroundJob.Kind.IMPORT,
        created_by=user,
        params={
            "newsletter_id": newsletter.pk,
            "prior_consent": prior_consent,
            "dry_run": dry_run,
        },
        input_name=(upload.name or "upload.csv")[:255],
        input_path=name,
        total=max(lines, 1),  # rows, less the header; a last line without a newline evens it
    )
    _enqueue(job)
    return job


def export_queryset(params: dict) -> QuerySet[Subscriber]:
    """Return the readers an export job covers: chosen ids, or the list's filters and search."""
    readers = Subscriber.objects.exclude(status=Subscriber.Status.ERASED)
    if params.get("ids") is not None:
        return readers.filter(pk__in=params["ids"])
    filters = {key: value for key, value in (params.get("filters") or {}).items() if key in EXPORT_FILTERS}
    readers = readers.filter(**filters)
    search = (params.get("q") or "").strip()
    from newsletter.admin.scale import WHOLE_ADDRESS  # the list's own rule for a search

    if WHOLE_ADDRESS.fullmatch(search):
        return readers.alias(address=Lower("email")).filter(address=search.lower())
    for word in search.split():
        readers = readers.filter(
            Q(email__icontains=word) | Q(name__icontains=word) | Q(organisation__icontains=word)
        )
    return readers


def job_export_start(
    *, user, ids: Iterable[int] | None = None, filters: dict | None = None, q: str = ""
) -> BackgroundJob:
    """Enqueue an export of the chosen readers (`ids`) or of those the filters match."""
    params: dict = {"ids": list(ids)} if ids is not None else {"filters": filters or {}, "q": q}
    job = BackgroundJob.objects.create(
        kind=BackgroundJob.Kind.EXPORT,
        created_by=user,
        params=params,
        total=export_queryset(params).count(),
    )
    _enqueue(job)
    return job


# --- Progress -----------------------------------------------------------------------------


def _progress_key(job_id: int) -> str:
    return f"nl:job:{job_id}:progress"


def job_progress_note(*, job_id: int, done: int, failed: int) -> None:
    """Record how far a running job is, where every web process sees it at once."""
    cache.set(_progress_key(job_id), (done, failed), PROGRESS_TTL)


@dataclass(frozen=True)
class Progress:
    status: str
    total: int
    done: int
    failed: int
    percent: int
    rows_per_second: float
    seconds_left: int | None

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def job_progress(*, job: BackgroundJob) -> Progress:
    """Return rows done and failed, the rate so far and the time left."""
    done, failed = job.done, job.failed
    if job.status == BackgroundJob.Status.RUNNING:
        done, failed = cache.get(_progress_key(job.pk)) or (0, 0)
    total = max(job.total, done)
    rate = 0.0
    left = None
    if job.started_at:
        elapsed = ((job.finished_at or timezone.now()) - job.started_at).total_seconds()
        rate = done / elapsed if elapsed > 0 else 0.0
        if job.status == BackgroundJob.Status.RUNNING and rate > 0:
            left = int((total - done) / rate) + 1
    if job.status == BackgroundJob.Status.DONE:
        percent, left = 100, 0
    else:
        percent = int(done * 100 / total) if total else 0
    return Progress(job.status, total, done, failed, min(percent, 100), round(rate, 1), left)


# --- Running (the Celery task) -----------------------------------------------------------


def job_run(*, job_id: int) -> None:
    """Run a queued job once: claim it, import or export, record the outcome.

    The claim is a conditional UPDATE, so a redelivered task never runs a job twice.
    A job that fails is marked failed with the reason, and leaves no result file.
    """
    claimed = BackgroundJob.objects.filter(pk=job_id, status=BackgroundJob.Status.QUEUED).update(
        status=BackgroundJob.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return
    job = BackgroundJob.objects.get(pk=job_id)
    job_progress_note(job_id=job.pk, done=0, failed=0)
    try:
        if job.kind == BackgroundJob.Kind.IMPORT:
            _run_import(job)
        else:
            _run_export(job)
    except ImportFileError as exc:
        _fail(job, str(exc))
    except Exception as exc:
        logger.exception("background job %s failed", job.pk)
        if job.kind == BackgroundJob.Kind.IMPORT:
            # Each chunk of an import commits on its own (services/subscriber_merge.py).
            message = (
                f"The job stopped: {type(exc).__name__}. The rows it had finished stay imported: "
                "import the file again to finish, and they show as unchanged."
            )
        else:
            message = f"The job stopped: {type(exc).__name__}. Nothing was kept; try again."
        _fail(job, message)
    finally:
        if job.input_path:
            (jobs_dir() / Path(job.input_path).name).unlink(missing_ok=True)
        cache.delete(_progress_key(job.pk))


def _fail(job: BackgroundJob, message: str) -> None:
    if job.output_path:
        (jobs_dir() / Path(job.output_path).name).unlink(missing_ok=True)
    if path := rows_file(job):
        path.unlink()
    BackgroundJob.objects.filter(pk=job.pk).update(
        status=BackgroundJob.Status.FAILED,
        error=message,
        output_path="",
        finished_at=timezone.now(),
    )


class _ImportFiles:
    """The two files an import leaves: what every row became, and the failed rows to fix.

    Both are written chunk by chunk as the import goes, so memory does not grow with
    the file. The failed rows are the rows as they were, with the reason in a last
    column, to fix and import again.
    """

    ROWS_COLUMNS = ("row", "email", "outcome", "detail")

    def __init__(self) -> None:
        self.rows_name = f"{uuid.uuid4().hex}-rows.csv"
        self.failed_name = f"{uuid.uuid4().hex}-failed.csv"
        self._rows_file = open(jobs_dir() / self.rows_name, "w", newline="", encoding="utf-8")  # noqa: SIM115
        self._rows_file.write(UTF8_BOM)  # opened in Excel by people (issue 14)
        self._rows = csv.writer(self._rows_file)
        self._rows.writerow(self.ROWS_COLUMNS)
        self._failed_file: IO[str] | None = None
        self._failed: csv.writer | None = None

    def write(self, header: list[str], results: list[RowResult]) -> None:
        self._rows.writerows(
            # A report is opened in a spreadsheet: the same formula guard as the export.
            (result.number, sheet_safe(result.email), result.outcome, sheet_safe(result.detail))
            for result in results
        )
        for result in results:
            if result.outcome is not Outcome.FAILED:
                continue
            if self._failed is None:
                self._failed_file = open(jobs_dir() / self.failed_name, "w", newline="", encoding="utf-8")  # noqa: SIM115
                self._failed = csv.writer(self._failed_file)
                self._failed.writerow([*header, "error"])
            self._failed.writerow([*result.cells, f"row {result.number}: {result.detail}"])

    @property
    def has_failed(self) -> bool:
        return self._failed is not None

    def close(self) -> None:
        self._rows_file.close()
        if self._failed_file:
            self._failed_file.close()

    def remove(self) -> None:
        self.close()
        for name in (self.rows_name, self.failed_name):
            (jobs_dir() / name).unlink(missing_ok=True)


def rows_file(job: BackgroundJob) -> Path | None:
    """Return an import's report of every row, if it has one."""
    name = (job.report or {}).get("rows_file")
    path = jobs_dir() / Path(name).name if name else None
    return path if path and path.is_file() else None


def _run_import(job: BackgroundJob) -> None:
    params = job.params
    source = jobs_dir() / Path(job.input_path).name
    files = _ImportFiles()
    try:
        with open(source, "rb") as handle:
            report = subscribers_import(
                newsletter=Newsletter.objects.get(pk=params["newsletter_id"]),
                source=handle,
                prior_consent=params.get("prior_consent", ""),
                dry_run=bool(params.get("dry_run")),
                on_progress=lambda rows, failed: job_progress_note(job_id=job.pk, done=rows, failed=failed),
                on_rows=files.write,
            )
    except BaseException:
        files.remove()
        raise
    files.close()
    output = files.failed_name if files.has_failed else ""
    BackgroundJob.objects.filter(pk=job.pk).update(
        status=BackgroundJob.Status.DONE,
        total=report.rows,
        done=report.rows,
        failed=report.errors_total,
        summary=report.summary(),
        report={
            "created": report.created,
            "unchanged": report.unchanged,
            "dry_run": report.dry_run,
            "errors": report.errors,
            "skipped": report.skipped,
            "errors_total": report.errors_total,
            "skipped_total": report.skipped_total,
            "rows_file": files.rows_name,
        },
        output_path=output,
        finished_at=timezone.now(),
    )


def _run_export(job: BackgroundJob) -> None:
    readers = export_queryset(job.params)
    output = f"{uuid.uuid4().hex}-readers.csv"
    BackgroundJob.objects.filter(pk=job.pk).update(output_path=output)
    job.output_path = output

    def progress(rows: int) -> None:
        job_progress_note(job_id=job.pk, done=rows, failed=0)

    path = jobs_dir() / output
    if connection.vendor == "postgresql":
        with open(path, "wb") as binary:
            binary.write(UTF8_BOM.encode())  # Excel on Chinese Windows needs it (issue 14)
            count = _copy_export(readers, binary, progress)
    else:
        with open(path, "w", newline="", encoding="utf-8") as out:
            out.write(UTF8_BOM)
            count = subscribers_export(out=out, readers=readers, on_progress=progress)
    BackgroundJob.objects.filter(pk=job.pk).update(
        status=BackgroundJob.Status.DONE,
        total=count,
        done=count,
        summary=f"{count} readers exported.",
        finished_at=timezone.now(),
    )


# The first characters that make a spreadsheet run a cell as a formula, as SQL literals.
_FORMULA_SQL = ", ".join(
    {"\t": "E'\\t'", "\r": "E'\\r'"}.get(char, f"'{char}'") for char in FORMULA_START
)


def _sql_safe(column: str) -> str:
    # The spreadsheet-formula guard of subscriber_csv.sheet_safe, in SQL.
    return f"CASE WHEN left({column}, 1) IN ({_FORMULA_SQL}) THEN '''' || {column} ELSE {column} END"


def _sql_iso(column: str) -> str:
    # datetime.isoformat() in UTC; the text cast costs far less than to_char.
    return f"COALESCE(replace(({column} AT TIME ZONE 'UTC')::text, ' ', 'T') || '+00:00', '')"


def _copy_export(
    readers: QuerySet[Subscriber], out: IO[bytes], progress: Callable[[int], None]
) -> int:
    """Write `readers` as CSV with one PostgreSQL COPY, streamed row by row; return the count.

    The server sends one CopyData message per row, so rows are counted as they come.
    """
    import psycopg

    through = Subscriber.categories.through._meta.db_table
    columns = [
        "id",
        "email",
        "name",
        "organisation",
        "country",
        "status",
        "source",
        "created_at",
        "confirmed_at",
        "unsubscribed_at",
    ]
    # The queryset's own SQL, so its filters apply to the table directly (no self-join)
    # and its rows come in primary-key order from the index. The categories are one
    # aggregate joined by hash: a subquery per row cost ten times as much.
    readers_sql, params = readers.order_by("id").values_list(*columns).query.sql_with_params()
    sql = f"""
        COPY (
          SELECT {_sql_safe("s.email")}, {_sql_safe("s.name")}, {_sql_safe("s.organisation")},
                 {_sql_safe("s.country")}, {_sql_safe("COALESCE(cats.slugs, '')")}, s.status,
                 {_sql_safe("s.source")}, {_sql_iso("s.created_at")},
                 {_sql_iso("s.confirmed_at")}, {_sql_iso("s.unsubscribed_at")}
          FROM ({readers_sql}) s
          LEFT JOIN (
            SELECT sc.subscriber_id, string_agg(c.slug, ';' ORDER BY c.position, c.name) AS slugs
            FROM {through} sc JOIN {Category._meta.db_table} c ON c.id = sc.category_id
            GROUP BY sc.subscriber_id
          ) cats ON cats.subscriber_id = s.id
        ) TO STDOUT WITH (FORMAT csv)
    """  # noqa: S608 - table names and Django's compiled SQL; values bound by mogrify
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(EXPORT_COLUMNS)
    out.write(header.getvalue().encode())
    count = 0
    last = time.monotonic()
    connection.ensure_connection()
    raw = connection.connection
    literal = psycopg.ClientCursor(raw).mogrify(sql, params)
    with raw.cursor() as cursor, cursor.copy(literal) as copy:
        for row in copy:
            out.write(row)
            count += 1
            if count % 10_000 == 0 and time.monotonic() - last > 0.5:
                progress(count)
                last = time.monotonic()
    return count
