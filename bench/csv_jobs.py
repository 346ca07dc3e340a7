"""Admin's CSV jobs at scale: import and export of N readers, rows per second and peak RSS.

    python -m bench.csv_jobs                      # import and export 1,000,000 on PostgreSQL
    python -m bench.csv_jobs --rows 100000        # import 100,000; export still 1,000,000

Database: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/brw_csv_bench,
made if missing and emptied first). Each job runs exactly as admin runs it
(newsletter/services/jobs.py `job_run`: the Celery task's body) in a fresh child
process, so its peak RSS is the job's own. The import uses "prior consent" (active
readers, no confirmation emails: the shape of a migration from an old list); the
export is the readers' list's "Export CSV" of everyone (COPY on PostgreSQL).
A second import of the same file finds every row on the list (unchanged): the path
that classifies without writing. Targets: import >= 10,000 rows/s (issue 11: it went
at ~280); export >= 50,000 rows/s; memory flat (peak RSS independent of N).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/brw_csv_bench"
)


def _env(media: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": DATABASE_URL,
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "LOG_LEVEL": "WARNING",
        "VAR_DIR": media,
        "REDIS_URL": "",
        "REDIS_CACHE_URL": "",
    }


def child(kind: str, argument: str) -> None:
    """Run one job in this process and print `rows seconds peak_rss_mb`."""
    import django

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: F401

    from newsletter.models import BackgroundJob
    from newsletter.selectors.newsletters import newsletter_default
    from newsletter.services.jobs import job_run, jobs_dir

    if kind == "import":
        name = Path(argument).name
        target = jobs_dir() / name
        Path(argument).rename(target)
        job = BackgroundJob.objects.create(
            kind="import",
            params={
                "newsletter_id": newsletter_default().pk,
                "prior_consent": "bench: moved from the old list",
                "dry_run": False,
            },
            input_name=name,
            input_path=name,
        )
    elif kind == "fill":
        _fill(int(argument))
        return
    else:
        job = BackgroundJob.objects.create(kind="export", params={"filters": {}, "q": ""})
    backend = _backend_cpu()
    python = _own_cpu()
    started = time.perf_counter()
    job_run(job_id=job.pk)
    seconds = time.perf_counter() - started
    python, backend = _own_cpu() - python, _backend_cpu() - backend
    job.refresh_from_db()
    if job.status != "done":
        print(f"job failed: {job.error}", file=sys.stderr)
        sys.exit(2)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(job.done, f"{seconds:.3f}", f"{python:.1f}", f"{backend:.1f}", f"{peak:.0f}")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of the job
    return usage.ru_utime + usage.ru_stime


def _backend_cpu() -> float:
    """Return the CPU seconds of this job's PostgreSQL backend (same machine), or nan."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return float("nan")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _fill(total: int) -> None:
    """Top the list up to `total` readers in one INSERT … SELECT (PostgreSQL), to export."""
    from django.db import connection

    from newsletter.models import Subscriber
    from newsletter.selectors.newsletters import newsletter_default

    have = Subscriber.objects.count()
    if have >= total:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {Subscriber._meta.db_table}
              (newsletter_id, email, name, organisation, country, language, status,
               token_secret, source, created_at, updated_at, confirmed_at, soft_bounce_count)
            SELECT %s, 'filled' || n || '@bench.example.org', 'Filled ' || n,
                   '=Org ' || (n %% 97), 'KZ', 'en', 'active', md5(n::text), 'bench',
                   now(), now(), now(), 0
            FROM generate_series(1, %s) AS n
            """,
            [newsletter_default().pk, total - have],
        )


def _run_child(kind: str, argument: str, media: str) -> tuple[int, float, float, float, float]:
    result = subprocess.run(
        [sys.executable, "-m", "bench.csv_jobs", "--child", kind, argument],
        cwd=ROOT,
        env=_env(media),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        sys.exit(f"{kind} child failed:\n{result.stderr[-3000:]}")
    rows, seconds, python, backend, peak = result.stdout.split()[-5:]
    return int(rows), float(seconds), float(python), float(backend), float(peak)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to import")
    parser.add_argument(
        "--export-rows", type=int, default=1_000_000, help="readers to export (topped up by SQL)"
    )
    parser.add_argument("--child", nargs=2, metavar=("KIND", "ARG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0

    media = tempfile.mkdtemp(prefix="brw-csv-bench-")
    env = _env(media)
    dbname = DATABASE_URL.rsplit("/", 1)[1]
    if DATABASE_URL.startswith("postgres"):
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", dbname], capture_output=True)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            # TRUNCATE: deleting a million readers through the ORM takes longer than the bench.
            "from django.db import connection;"
            "connection.cursor().execute('TRUNCATE newsletter_subscriber, newsletter_backgroundjob"
            " RESTART IDENTITY CASCADE')",
        ],
        cwd=ROOT,
        env=env,
        check=True,
    )
    source = Path(media) / "readers.csv"
    with open(source, "w", encoding="utf-8", newline="") as out:
        out.write("email,name,organisation,country,categories\n")
        for n in range(args.rows):
            out.write(f"reader{n}@bench.example.org,Reader {n},Silk Road Bank {n % 97},CN,\n")
    size_mb = source.stat().st_size / 1e6
    again = Path(media) / "readers-again.csv"
    shutil.copyfile(source, again)  # the job deletes its input when done

    imported = _run_child("import", str(source), media)
    # The same file again: every row found on the list, unchanged (the classifying path).
    reimported = _run_child("import", str(again), media)
    if DATABASE_URL.startswith("postgres"):
        subprocess.run(
            [sys.executable, "-m", "bench.csv_jobs", "--child", "fill", str(args.export_rows)],
            cwd=ROOT,
            env=env,
            check=True,
        )
    exported = _run_child("export", "-", media)
    engine = "PostgreSQL" if DATABASE_URL.startswith("postgres") else "SQLite"
    print(f"CSV jobs: import {args.rows:,} rows ({size_mb:.0f} MB file), export {exported[0]:,}, {engine}")
    print(
        f"{'job':<10}{'rows':>11}{'seconds':>9}{'rows/s':>9}{'CPU s: job':>12}{'database':>10}"
        f"{'CPU-bound rows/s':>18}{'peak RSS MB':>13}"
    )
    for name, (rows, seconds, python, backend, rss) in (
        ("import", imported),
        ("re-import", reimported),
        ("export", exported),
    ):
        # The job's threads and its database backend overlap on two cores: what the
        # busier of the two needs bounds the rate on an otherwise idle machine.
        bound = rows / max(python, backend) if max(python, backend) > 0 else float("nan")
        print(
            f"{name:<10}{rows:>11,}{seconds:>9.1f}{rows / seconds:>9,.0f}{python:>12.1f}"
            f"{backend:>10.1f}{bound:>18,.0f}{rss:>13.0f}"
        )
    imported, import_s = imported[0], imported[1]
    exported, export_s = exported[0], exported[1]
    import_ok = imported == args.rows and imported / import_s >= 10_000
    export_ok = exported / export_s >= 50_000
    print("import target (>= 10,000 rows/s):", "met" if import_ok else "MISSED")
    print("export target (>= 50,000 rows/s):", "met" if export_ok else "MISSED")
    one, five, fifteen = os.getloadavg()
    print(f"load average at the end: {one:.1f} {five:.1f} {fifteen:.1f} on {os.cpu_count()} CPUs")
    return 0 if import_ok and export_ok else 1


if __name__ == "__main__":
    sys.exit(main())
