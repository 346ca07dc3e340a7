"""Admin's CSV import and export run in a real Celery worker over Redis and PostgreSQL.

The web request only stores the file and enqueues the job; the worker process imports
it, the progress page follows it, and the files come back through admin.
"""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from newsletter.models import BackgroundJob, Subscriber
from tests.e2e.conftest import wait_for
from tests.factories import default_newsletter

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

HEADER = "email,name,organisation,country,categories\n"


def _done(job_id: int) -> bool:
    return BackgroundJob.objects.get(pk=job_id).status in ("done", "failed")


def test_a_worker_imports_a_few_thousand_rows_and_exports_them(start_worker, tmp_path, django_user_model):
    start_worker(VAR_DIR=str(tmp_path))
    admin = django_user_model.objects.create_superuser("boss", "boss@example.org", "pw-123456")
    client = Client()
    client.force_login(admin)

    rows = "".join(f"r{n}@example.org,Reader {n},,CN,\n" for n in range(3000))
    bad = "not-an-address,,,,\n" + f"long@example.org,{'N' * 200_000},,,\n"
    upload = SimpleUploadedFile("readers.csv", (HEADER + rows + bad).encode(), "text/csv")
    response = client.post(
        "/admin/newsletter/subscriber/import/",
        {"file": upload, "newsletter": default_newsletter().pk, "prior_consent": "Old list, 2025"},
    )
    assert response.status_code == 302  # answered at once: the worker does the work
    job = BackgroundJob.objects.get()
    wait_for(lambda: _done(job.pk), timeout=180)
    job.refresh_from_db()
    assert (job.status, job.done, job.failed) == ("done", 3002, 2), job.error
    page = client.get(response["Location"]).content.decode()
    assert "3002 rows: 3000 imported, 0 skipped, 2 with errors." in page
    failed = client.get(f"/admin/newsletter/backgroundjob/{job.pk}/download/")
    csv.field_size_limit(1 << 20)  # the refused row comes back whole, its 200,000-character cell too
    failed_rows = list(csv.DictReader(io.StringIO(b"".join(failed.streaming_content).decode())))
    assert [row["email"] for row in failed_rows] == ["not-an-address", "long@example.org"]
    assert Subscriber.objects.filter(status="active").count() == 3000

    response = client.post("/admin/newsletter/subscriber/export/?status__exact=active")
    export = BackgroundJob.objects.get(kind="export")
    wait_for(lambda: _done(export.pk), timeout=120)
    export.refresh_from_db()
    assert (export.status, export.done) == ("done", 3000), export.error
    download = client.get(f"/admin/newsletter/backgroundjob/{export.pk}/download/")
    exported = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode("utf-8-sig"))))
    assert len(exported) == 3000 and exported[0]["email"] == "r0@example.org"
