"""import_subscribers and export_subscribers, and the same in admin."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from newsletter.models import ConsentRecord, Subscriber
from newsletter.suppression import suppress
from tests.factories import CategoryFactory, SubscriberFactory, default_newsletter
from tests.reader_steps import admin_client, sent_to  # noqa: F401 - admin_client is a fixture

pytestmark = pytest.mark.django_db

GOOD = """email,name,organisation,country,categories
Li.Wei@Example.com,Li Wei,Silk Road Bank,cn,finance
amina@example.com,Amina,,KZ,Finance;energy
"""


@pytest.fixture(autouse=True)
def sections():
    return [CategoryFactory(name="Finance"), CategoryFactory(name="Energy")]


def run(tmp_path, text: str, *args: str, encoding: str = "utf-8") -> tuple[str, str]:
    path = tmp_path / "readers.csv"
    path.write_bytes(text.encode(encoding))
    out, err = io.StringIO(), io.StringIO()
    call_command("import_subscribers", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_imports_readers_as_pending_and_sends_each_a_confirmation(tmp_path, run_on_commit):
    with run_on_commit():
        out, _ = run(tmp_path, GOOD)
    assert "2 rows: 2 imported, 0 skipped, 0 with errors." in out
    li = Subscriber.objects.get(email="li.wei@example.com")
    assert (li.status, li.name, li.country, li.source) == ("pending", "Li Wei", "CN", "import")
    assert [c.name for c in li.categories.all()] == ["Finance"]
    amina = Subscriber.objects.get(email="amina@example.com")
    assert sorted(c.name for c in amina.categories.all()) == ["Energy", "Finance"]
    assert [m.subject for m in sent_to("li.wei@example.com")] == [
        "Confirm your subscription to Belt & Road Weekly"
    ]
    assert len(mail.outbox) == 2
    assert not ConsentRecord.objects.exists()


def test_prior_consent_imports_active_readers_with_the_note_and_sends_nothing(
    tmp_path, run_on_commit
):
    with run_on_commit():
        run(tmp_path, GOOD, "--prior-consent", "Signed up at the Boao Forum stand, March 2026")
    assert set(Subscriber.objects.values_list("status", flat=True)) == {"active"}
    record = ConsentRecord.objects.get(subscriber__email="amina@example.com")
    assert (record.action, record.note, record.form) == (
        "import",
        "Signed up at the Boao Forum stand, March 2026",
        "import",
    )
    assert mail.outbox == []


def test_bad_rows_are_reported_by_number_and_write_nothing(tmp_path):
    text = (
        "email,name,country,categories\n"
        "good@example.com,Good,,\n"  # row 2
        "not-an-address,Bad,,\n"  # row 3
        "GOOD@example.com,Again,,\n"  # row 4: duplicate of row 2
        "cat@example.com,Cat,,Sport\n"  # row 5: unknown category
        "land@example.com,Land,XX,\n"  # row 6: unknown country
        '"multi@example.com","Multi\nLine",,\n'  # row 7: a line break in a name
        "other@example.com,Other,,\n"  # row 9 (row 7 spans two lines)
    )
    with pytest.raises(CommandError, match="5 rows were not imported"):
        run(tmp_path, text)
    assert sorted(Subscriber.objects.values_list("email", flat=True)) == [
        "good@example.com",
        "other@example.com",
    ]


def test_the_error_report_names_each_row_and_what_is_wrong(tmp_path):
    text = "email,categories\nnope,\ncat@example.com,Sport\nok@example.com,\nOK@example.com,\n"
    path = tmp_path / "r.csv"
    path.write_text(text)
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_subscribers", str(path), stdout=io.StringIO(), stderr=err)
    lines = err.getvalue().splitlines()
    assert lines[0].startswith("row 2: email: Enter a valid email address")
    assert lines[1].startswith("row 3: categories: unknown category 'Sport' (known: ")
    assert lines[2] == "row 5: duplicate address: ok@example.com is on row 4."


def test_existing_and_suppressed_addresses_are_skipped_and_left_alone(tmp_path, run_on_commit):
    SubscriberFactory(email="amina@example.com", name="Amina Old", status="unsubscribed")
    suppress(newsletter=default_newsletter(), email="li.wei@example.com", reason="erased")
    with run_on_commit():
        out, _ = run(tmp_path, GOOD)
    assert "0 imported, 2 skipped" in out
    assert "row 2: skipped, suppressed" in out
    assert "row 3: skipped, already on the list (unsubscribed)" in out
    assert Subscriber.objects.get().name == "Amina Old"
    assert not Subscriber.objects.filter(email="li.wei@example.com").exists()
    assert mail.outbox == []


def test_a_dry_run_writes_nothing_sends_nothing_and_spends_no_daily_email(tmp_path, run_on_commit):
    with run_on_commit():
        out, _ = run(tmp_path, GOOD, "--dry-run")
    assert "2 would be imported" in out and "Dry run" in out
    assert not Subscriber.objects.exists() and mail.outbox == []
    with run_on_commit():
        run(tmp_path, GOOD)
    assert len(mail.outbox) == 2


@pytest.mark.parametrize(
    ("text", "encoding", "message"),
    [
        ("name\nLi\n", "utf-8", "header naming the columns"),
        ("email,phone\na@example.com,1\n", "utf-8", "Unknown column(s) 'phone'"),
        ("email,name\nä@example.com,Jörg\n", "latin-1", "is not UTF-8"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole(tmp_path, text, encoding, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(tmp_path, text, encoding=encoding)
    assert not Subscriber.objects.exists()


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_subscribers", str(tmp_path / "nope.csv"))


def test_export_writes_every_reader_but_the_erased_and_defuses_formulas(tmp_path):
    reader = SubscriberFactory(email="a@example.com", name="=HYPERLINK(1)", country="CN")
    reader.categories.set([Subscriber.categories.field.related_model.objects.first()])
    SubscriberFactory(email="b@example.com", status="unsubscribed")
    SubscriberFactory(email="erased-9@erased.invalid", status="erased")
    out = io.StringIO()
    call_command("export_subscribers", stdout=out, stderr=io.StringIO())
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["email"] for r in rows] == ["a@example.com", "b@example.com"]
    assert rows[0]["name"] == "'=HYPERLINK(1)"
    assert rows[0]["categories"] == "finance"
    only_active = io.StringIO()
    call_command(
        "export_subscribers", "--status", "active", stdout=only_active, stderr=io.StringIO()
    )
    assert [r["email"] for r in csv.DictReader(io.StringIO(only_active.getvalue()))] == [
        "a@example.com"
    ]


def test_an_export_imports_back_into_another_list_unchanged(tmp_path, run_on_commit):
    SubscriberFactory(email="a@example.com", name="=SUM(A1)", organisation="Org", country="CN")
    out = io.StringIO()
    call_command("export_subscribers", stdout=out, stderr=io.StringIO())
    Subscriber.objects.all().delete()
    with run_on_commit():
        run(tmp_path, out.getvalue(), "--prior-consent", "Moved from the old system")
    reader = Subscriber.objects.get()
    assert (reader.email, reader.name, reader.organisation) == ("a@example.com", "=SUM(A1)", "Org")


# --- In admin --------------------------------------------------------------------------------


def test_admin_imports_a_file_and_shows_the_report(admin_client):
    page = admin_client.get("/admin/newsletter/subscriber/").content.decode()
    assert 'href="/admin/newsletter/subscriber/import/"' in page
    upload = SimpleUploadedFile("r.csv", (GOOD + "broken,,,,\n").encode(), "text/csv")
    response = admin_client.post(
        "/admin/newsletter/subscriber/import/",
        {"file": upload, "newsletter": default_newsletter().pk, "prior_consent": ""},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "3 rows: 2 imported, 0 skipped, 1 with errors." in page
    assert "Row 4: email: Enter a valid email address" in page
    assert Subscriber.objects.filter(status="pending").count() == 2
    assert len(mail.outbox) == 2


def test_admin_refuses_a_file_without_an_email_column(admin_client):
    upload = SimpleUploadedFile("r.csv", b"name\nLi\n", "text/csv")
    response = admin_client.post(
        "/admin/newsletter/subscriber/import/",
        {"file": upload, "newsletter": default_newsletter().pk},
    )
    assert "header naming the columns" in response.content.decode()
    assert not Subscriber.objects.exists()


def test_admin_exports_the_selected_readers(admin_client):
    a = SubscriberFactory(email="a@example.com")
    SubscriberFactory(email="b@example.com")
    response = admin_client.post(
        "/admin/newsletter/subscriber/", {"action": "export_csv", "_selected_action": [a.pk]}
    )
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["email"] for r in rows] == ["a@example.com"]


def test_the_admin_report_lists_what_each_row_became_and_offers_the_failed_rows_to_fix(
    admin_client, tmp_path
):
    from urllib.parse import unquote

    SubscriberFactory(email="already@example.org")
    text = (
        "email,name,organisation,country,categories\n"
        "new.one@example.org,New One,,CN,finance\n"
        "already@example.org,Old,,,\n"
        "broken,Broken Row,Silk Bank,KZ,\n"
        "new.three@example.org,=HYPERLINK(1),,,nonsense\n"
        "new.two@example.org,,,XX,\n"
    )
    page = admin_client.get("/admin/newsletter/subscriber/import/").content.decode()
    # One newsletter: it is chosen already.
    assert re.search(rf'<option value="{default_newsletter().pk}" selected>', page)
    upload = SimpleUploadedFile("r.csv", text.encode(), "text/csv")
    page = admin_client.post(
        "/admin/newsletter/subscriber/import/",
        {"file": upload, "newsletter": default_newsletter().pk},
    ).content.decode()
    rows = re.findall(
        r"<tr(?: class=\"errors\")?><td>(\d+)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", page
    )
    became = {number: (email, what) for number, email, what in rows}
    assert became["2"][1].startswith("a new reader, pending")
    assert became["3"] == ("already@example.org", "already on the list (active): left as it is.")
    assert became["4"][1].startswith("email: Enter a valid email address")
    assert "categories" in became["5"][1] and "country" in became["6"][1]
    assert len(rows) == 5
    link = re.search(
        r'id="failed-rows" download="failed-rows.csv" href="data:text/csv;charset=utf-8,([^"]+)"',
        page,
    )
    failed = unquote(link.group(1))
    lines = list(csv.reader(io.StringIO(failed)))
    assert lines[0] == ["email", "name", "organisation", "country", "categories", "problem"]
    assert [line[0] for line in lines[1:]] == [
        "broken",
        "new.three@example.org",
        "new.two@example.org",
    ]
    assert lines[2][1] == "'=HYPERLINK(1)"  # formula-safe for the spreadsheet it opens in
    assert lines[1][1:5] == ["Broken Row", "Silk Bank", "KZ", ""]
    # Fixed in place (the problem column left in), the file imports as it is.
    fixed = failed.replace("broken,", "broken@example.org,").replace(",XX,", ",CN,")
    fixed = fixed.replace(",nonsense,", ",energy,")
    out, _err = run(tmp_path, fixed)
    assert "3 rows: 3 imported, 0 skipped, 0 with errors." in out
