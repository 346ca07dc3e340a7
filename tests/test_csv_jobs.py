"""CSV import and export in admin run as background jobs: progress, report, downloads.

In the embedded run the Celery task runs in process when the request commits, so the
progress page already shows the end; with PostgreSQL the export is one COPY, checked
here against the Python export row for row.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from newsletter.models import BackgroundJob, Subscriber
from newsletter.services.jobs import job_progress_note
from newsletter.services.subscriber_csv import subscribers_export
from newsletter.services.subscriber_merge import ImportStage
from newsletter.suppression import suppress
from tests.factories import CategoryFactory, StaffUserFactory, SubscriberFactory, default_newsletter
from tests.reader_steps import admin_client  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

IMPORT = "/admin/newsletter/subscriber/import/"
HEADER = "email,name,organisation,country,categories\n"
GOOD = HEADER + "Li.Wei@Example.com,Li Wei,Silk Road Bank,cn,finance\namina@example.com,Amina,,KZ,Finance\n"


@pytest.fixture(autouse=True)
def sections():
    return [CategoryFactory(name="Finance"), CategoryFactory(name="Energy")]


def _import(client, text: str | bytes, **extra):
    data = text.encode() if isinstance(text, str) else text
    upload = SimpleUploadedFile("readers.csv", data, "text/csv")
    return client.post(IMPORT, {"file": upload, "newsletter": default_newsletter().pk, **extra})


def _follow(client, response) -> str:
    assert response.status_code == 302, response.content[:500]
    assert "/admin/newsletter/backgroundjob/" in response["Location"]
    page = client.get(response["Location"])
    assert page.status_code == 200
    return page.content.decode()


def _download(client, job: BackgroundJob) -> list[dict]:
    response = client.get(f"/admin/newsletter/backgroundjob/{job.pk}/download/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment;")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def test_an_import_runs_as_a_job_with_a_report_and_the_failed_rows_to_download(admin_client):
    response = _import(admin_client, GOOD + "broken,,,,\n" + "x@example.com,,,ZZ,\n")
    page = _follow(admin_client, response)
    assert "4 rows: 2 imported, 0 skipped, 2 with errors." in page
    assert "Row 4: email: Enter a valid email address" in page
    assert "Rows done" in page and "Rows failed" in page and "Time left" in page
    assert Subscriber.objects.filter(status="pending").count() == 2
    job = BackgroundJob.objects.get()
    assert (job.status, job.done, job.failed) == ("done", 4, 2)
    failed = _download(admin_client, job)
    assert [row["email"] for row in failed] == ["broken", "x@example.com"]
    assert failed[0]["error"].startswith("row 4: email:")
    assert "country" in failed[1]["error"]


def test_the_import_page_preselects_the_only_newsletter(admin_client):
    # Issue 15: with one newsletter there is nothing to choose, so it is chosen already.
    page = admin_client.get(IMPORT).content.decode()
    assert f'<option value="{default_newsletter().pk}" selected>' in page


def test_a_file_that_cannot_be_read_fails_the_job_with_the_reason(admin_client):
    page = _follow(admin_client, _import(admin_client, "name\nLi\n"))
    assert "header naming the columns" in page
    assert BackgroundJob.objects.get().status == "failed"
    assert not Subscriber.objects.exists()


def test_a_file_over_the_size_cap_is_refused_with_a_clear_message(admin_client, settings):
    settings.NEWSLETTER_IMPORT_MAX_MB = 1
    response = _import(admin_client, HEADER + "a@example.com,x,,,\n" * 60_000)
    assert response.status_code == 200
    assert "an import takes at most 1.0\xa0MB" in response.content.decode()
    assert not BackgroundJob.objects.exists() and not Subscriber.objects.exists()


def test_a_cell_longer_than_its_field_is_an_error_on_its_row_only(admin_client):
    long_name = "N" * 200_000  # past the csv module's 131,072 limit, which was a 500
    text = HEADER + f"long@example.com,{long_name},,,\n" + "ok@example.com,Ok,,,\n"
    page = _follow(admin_client, _import(admin_client, text))
    assert "Row 2: name: Ensure this value has at most 100 characters" in page
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["ok@example.com"]


def test_control_characters_in_a_csv_never_reach_the_database(admin_client):
    text = HEADER + "nul@example.com,Zhou\x00 Min\x07,Xin\x00hua,,\n"
    _follow(admin_client, _import(admin_client, text))
    reader = Subscriber.objects.get()
    assert (reader.name, reader.organisation) == ("Zhou Min", "Xinhua")


def test_a_few_thousand_rows_import_with_their_counts(admin_client):
    rows = "".join(f"reader{n}@example.com,Reader {n},,CN,\n" for n in range(3000))
    page = _follow(admin_client, _import(admin_client, HEADER + rows, prior_consent="Moved from the old list"))
    assert "3000 rows: 3000 imported, 0 skipped, 0 with errors." in page
    job = BackgroundJob.objects.get()
    assert (job.done, job.failed, job.total) == (3000, 0, 3000)
    assert Subscriber.objects.filter(status="active").count() == 3000


def test_the_progress_page_shows_rows_done_failed_and_time_left_while_running(admin_client):
    job = BackgroundJob.objects.create(
        kind="import", status="running", total=10_000, started_at=timezone.now() - timezone.timedelta(seconds=10)
    )
    job_progress_note(job_id=job.pk, done=2_000, failed=15)
    status = admin_client.get(f"/admin/newsletter/backgroundjob/{job.pk}/progress.json").json()
    assert (status["done"], status["failed"], status["percent"]) == (2000, 15, 20)
    assert 30 <= status["seconds_left"] <= 50  # 200 rows/s, 8,000 to go
    page = admin_client.get(f"/admin/newsletter/backgroundjob/{job.pk}/progress/").content.decode()
    assert '<td id="job-done">2000</td>' in page and '<td id="job-failed">15</td>' in page
    assert 'http-equiv="refresh"' in page  # it follows itself without JavaScript
    cache.clear()


def test_the_export_action_runs_as_a_job_and_offers_the_file(admin_client):
    a = SubscriberFactory(email="a@example.com")
    SubscriberFactory(email="b@example.com")
    response = admin_client.post(
        "/admin/newsletter/subscriber/", {"action": "export_csv", "_selected_action": [a.pk]}
    )
    page = _follow(admin_client, response)
    assert "1 readers exported." in page and "Download the CSV" in page
    assert [row["email"] for row in _download(admin_client, BackgroundJob.objects.get())] == [
        "a@example.com"
    ]


def test_exporting_all_that_match_the_lists_filters(admin_client):
    SubscriberFactory(email="on@example.com", status="active")
    SubscriberFactory(email="off@example.com", status="unsubscribed")
    SubscriberFactory(email="gone@example.com", status="erased")
    list_page = admin_client.get("/admin/newsletter/subscriber/?status__exact=active").content.decode()
    assert 'href="/admin/newsletter/subscriber/export/?status__exact=active"' in list_page
    confirm = admin_client.get("/admin/newsletter/subscriber/export/?status__exact=active")
    assert "1 reader matches" in confirm.content.decode()
    response = admin_client.post("/admin/newsletter/subscriber/export/?status__exact=active")
    _follow(admin_client, response)
    assert [row["email"] for row in _download(admin_client, BackgroundJob.objects.get())] == [
        "on@example.com"
    ]


def test_the_export_file_matches_the_python_export_row_for_row(admin_client, sections):
    # On PostgreSQL the job uses COPY; its rows must be what subscribers_export writes.
    finance, energy = sections
    tricky = SubscriberFactory(
        email="tricky@example.com", name="=HYPERLINK(1)", organisation='He said "hi", twice\nok'
    )
    tricky.categories.set([finance, energy])
    SubscriberFactory(email="plain@example.com", name="-5", confirmed_at=None)
    admin_client.post("/admin/newsletter/subscriber/export/")
    job_rows = _download(admin_client, BackgroundJob.objects.get())
    out = io.StringIO()
    subscribers_export(out=out, readers=Subscriber.objects.all())
    python_rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(job_rows) == len(python_rows) == 2
    for ours, theirs in zip(job_rows, python_rows, strict=True):
        for column in ("signed_up_at", "confirmed_at", "unsubscribed_at"):
            # The same moment; PostgreSQL always writes the microseconds, Python not when zero.
            assert _moment(ours.pop(column)) == _moment(theirs.pop(column))
        assert ours == theirs
    assert job_rows[0]["name"].startswith("'=")  # the spreadsheet-formula guard
    assert connection.vendor in ("postgresql", "sqlite")


def _moment(text: str) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def test_downloads_need_the_readers_view_permission(client, admin_client):
    SubscriberFactory(email="a@example.com")
    admin_client.post("/admin/newsletter/subscriber/export/")
    job = BackgroundJob.objects.get()
    intern = StaffUserFactory(username="intern")
    client.force_login(intern)
    assert client.get(f"/admin/newsletter/backgroundjob/{job.pk}/download/").status_code == 404
    assert client.get(f"/admin/newsletter/backgroundjob/{job.pk}/progress/").status_code == 404


# --- Issue 11 item 5 at scale, issue 15 item 13: every row's outcome ----------------------


def _rows_report(client, job: BackgroundJob) -> list[dict]:
    response = client.get(f"/admin/newsletter/backgroundjob/{job.pk}/download/rows/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="import-{job.pk}-rows.csv"'
    return list(
        csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig")))
    )


def test_the_report_lists_what_each_row_became(admin_client, sections):
    finance, _energy = sections
    same = SubscriberFactory(email="same@example.com", name="Same", organisation="", country="KZ")
    same.categories.set([finance])
    SubscriberFactory(email="other@example.com", name="Old name", status="active")
    SubscriberFactory(email="gone@example.com", name="Gone", status="unsubscribed")
    text = HEADER + (
        "new@example.com,New,,CN,energy\n"  # row 2: created
        "same@example.com,Same,,kz,Finance\n"  # row 3: already so
        "other@example.com,New name,,,\n"  # row 4: on the list, never rewritten
        "gone@example.com,Gone,,,\n"  # row 5: unsubscribed, left alone
        "not-an-address,,,,\n"  # row 6: failed
        "NEW@example.com,,,,\n"  # row 7: duplicate
    )
    page = _follow(admin_client, _import(admin_client, text))
    assert "6 rows: 1 imported, 1 unchanged, 2 skipped, 2 with errors." in page
    assert "Download what each row became" in page
    job = BackgroundJob.objects.get()
    report = [
        (row["row"], row["email"], row["outcome"], row["detail"])
        for row in _rows_report(admin_client, job)
    ]
    assert report == [
        ("2", "new@example.com", "created", "pending, asked to confirm by email"),
        (
            "3",
            "same@example.com",
            "unchanged",
            "already on the list (active) with these details: nothing to change.",
        ),
        ("4", "other@example.com", "skipped", "already on the list (active): left as it is."),
        ("5", "gone@example.com", "skipped", "already on the list (unsubscribed): left as it is."),
        (
            "6",
            "not-an-address",
            "failed",
            "email: Enter a valid email address, like name@example.com.",
        ),
        ("7", "new@example.com", "failed", "duplicate address: new@example.com is on row 2."),
    ]
    assert Subscriber.objects.get(email="other@example.com").name == "Old name"
    assert [row["email"] for row in _download(admin_client, job)] == [
        "not-an-address",
        "NEW@example.com",
    ]


def test_chunks_give_the_same_outcomes_as_one_and_find_duplicates_across_them(
    admin_client, monkeypatch
):
    monkeypatch.setattr("newsletter.services.subscriber_csv.IMPORT_CHUNK", 7)
    SubscriberFactory(email="reader5@example.com", status="bounced")
    suppress(newsletter=default_newsletter(), email="reader9@example.com", reason="erased")
    rows = [f"reader{n}@example.com,Reader {n},,CN,\n" for n in range(40)]
    rows.insert(30, "READER3@example.com,Again,,,\n")  # row 32, a duplicate of row 5, chunks apart
    page = _follow(
        admin_client, _import(admin_client, HEADER + "".join(rows), prior_consent="Old list")
    )
    assert "41 rows: 38 imported, 2 skipped, 1 with errors." in page
    report = {row["row"]: row for row in _rows_report(admin_client, BackgroundJob.objects.get())}
    assert len(report) == 41
    assert report["32"]["detail"] == "duplicate address: reader3@example.com is on row 5."
    assert report["7"]["detail"] == "already on the list (bounced): left as it is."
    assert report["11"]["outcome"] == "skipped" and report["11"]["detail"].startswith("suppressed")
    assert (
        Subscriber.objects.filter(status="active", consent_records__note="Old list").count() == 38
    )


def test_importing_the_same_file_again_changes_nothing(admin_client):
    rows = "".join(f"reader{n}@example.com,Reader {n},,CN,finance\n" for n in range(25))
    _follow(admin_client, _import(admin_client, HEADER + rows, prior_consent="Old list"))
    before = list(
        Subscriber.objects.order_by("pk").values_list("pk", "email", "name", "updated_at")
    )
    page = _follow(admin_client, _import(admin_client, HEADER + rows, prior_consent="Old list"))
    assert "25 rows: 0 imported, 25 unchanged, 0 skipped, 0 with errors." in page
    assert (
        list(Subscriber.objects.order_by("pk").values_list("pk", "email", "name", "updated_at"))
        == before
    )


def test_a_reader_who_signs_up_while_the_import_runs_is_left_as_they_signed_up(
    admin_client, monkeypatch
):
    classify = ImportStage._classify

    def and_meanwhile_a_signup(self, cursor):
        classify(self, cursor)
        SubscriberFactory(email="amina@example.com", name="Amina herself")

    monkeypatch.setattr(ImportStage, "_classify", and_meanwhile_a_signup)
    page = _follow(admin_client, _import(admin_client, GOOD))
    assert "2 rows: 1 imported, 1 skipped, 0 with errors." in page
    assert "Row 3: signed up while the import ran: left as it is." in page
    assert Subscriber.objects.get(email="amina@example.com").name == "Amina herself"


def test_a_job_that_fails_midway_leaves_no_half_written_chunk(admin_client, monkeypatch):
    monkeypatch.setattr("newsletter.services.subscriber_csv.IMPORT_CHUNK", 10)
    insert = ImportStage._insert
    calls = []

    def fail_in_the_second_chunk(self, cursor):
        calls.append(1)
        insert(self, cursor)  # readers written, then the chunk's last statement fails
        if len(calls) == 2:
            raise RuntimeError("database went away")

    monkeypatch.setattr(ImportStage, "_insert", fail_in_the_second_chunk)
    rows = "".join(f"reader{n}@example.com,Reader {n},,,finance\n" for n in range(25))
    page = _follow(admin_client, _import(admin_client, HEADER + rows, prior_consent="Old list"))
    assert "The rows it had finished stay imported: import the file again to finish" in page
    job = BackgroundJob.objects.get()
    assert job.status == "failed" and job.output_path == "" and "rows_file" not in job.report
    # The first chunk whole (reader, section, consent record), nothing of the second.
    readers = Subscriber.objects.all()
    assert sorted(readers.values_list("email", flat=True)) == sorted(
        f"reader{n}@example.com" for n in range(10)
    )
    assert all(r.categories.count() == 1 and r.consent_records.count() == 1 for r in readers)


def test_a_file_with_a_bad_byte_far_down_is_refused_before_any_row_is_written(
    admin_client, monkeypatch
):
    monkeypatch.setattr("newsletter.services.subscriber_csv.IMPORT_CHUNK", 5)
    rows = "".join(f"reader{n}@example.com,Reader {n},,,\n" for n in range(30)).encode()
    page = _follow(
        admin_client,
        _import(admin_client, HEADER.encode() + rows + "Jörg@example.com,,,,\n".encode("latin-1")),
    )
    assert "The file is not UTF-8 (line 32)" in page
    assert not Subscriber.objects.exists()


def test_a_character_cut_off_at_the_end_of_the_file_is_refused_too(admin_client, monkeypatch):
    monkeypatch.setattr("newsletter.services.subscriber_csv.IMPORT_CHUNK", 1)
    page = _follow(admin_client, _import(admin_client, GOOD.encode() + "王".encode()[:2]))
    assert "The file is not UTF-8 (line 4)" in page
    assert not Subscriber.objects.exists()


def test_a_dry_run_reports_every_row_and_writes_nothing(admin_client):
    page = _follow(admin_client, _import(admin_client, GOOD + "=cmd|calc,,,,\n", dry_run="on"))
    assert "3 rows: 2 would be imported, 0 skipped, 1 with errors." in page
    outcomes = [
        (row["email"], row["outcome"], row["detail"])
        for row in _rows_report(admin_client, BackgroundJob.objects.get())
    ]
    assert outcomes[:2] == [
        ("li.wei@example.com", "created", "would be imported"),
        ("amina@example.com", "created", "would be imported"),
    ]
    assert outcomes[2][:2] == ("'=cmd|calc", "failed")  # the spreadsheet-formula guard
    assert not Subscriber.objects.exists()
