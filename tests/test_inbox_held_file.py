"""Write to Us keeps a good file while the reader fixes the rest of the form (issue 15, item 8)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.core import signing
from django.utils import timezone

from inbox.models import Ticket
from tests.inbox_steps import PDF, TEXT, WRITE, upload, write_data

pytestmark = pytest.mark.django_db
KEPT = "Your file “{}” is kept — attach another to replace it."


def _held(settings) -> list[Path]:
    folder = Path(settings.MEDIA_ROOT) / "inbox-held"
    return sorted(folder.iterdir()) if folder.exists() else []


def _reference(page: str) -> str:
    found = re.search(r'<input type="hidden" name="held_attachment"(?: value="([^"]*)")?', page)
    assert found, "no held_attachment field on the page"
    return found.group(1) or ""


def _fail_without_consent(client, **overrides) -> str:
    data = write_data(**overrides)
    del data["consent"]
    response = client.post(WRITE, data)
    assert response.status_code == 400
    return response.content.decode()


def test_a_good_file_is_kept_while_the_form_is_fixed_and_sent_with_it(client, settings):
    # A story sent as a file alone (no text): either is enough, on the second try too.
    page = _fail_without_consent(client, body="", attachment=upload("harvest-report.pdf", PDF))
    assert KEPT.format("harvest-report.pdf") in page
    assert "choose it again" not in page.lower() and 'href="#file-again"' not in page
    assert len(_held(settings)) == 1
    response = client.post(WRITE, write_data(body="", held_attachment=_reference(page)))
    assert response.status_code == 200
    ticket = Ticket.objects.get()
    assert (ticket.attachment_name, ticket.attachment_type) == (
        "harvest-report.pdf",
        "application/pdf",
    )
    assert ticket.attachment.read() == PDF
    assert _held(settings) == []  # taken once, then gone


def test_a_file_chosen_on_the_second_try_replaces_the_kept_one(client, settings):
    page = _fail_without_consent(client, attachment=upload("draft.pdf", PDF))
    client.post(
        WRITE, write_data(held_attachment=_reference(page), attachment=upload("final.txt", TEXT))
    )
    ticket = Ticket.objects.get()
    assert ticket.attachment_name == "final.txt" and ticket.attachment.read() == TEXT
    assert _held(settings) == []


def test_a_refused_file_is_not_kept(client, settings):
    page = _fail_without_consent(
        client, attachment=upload("story.pdf", b"MZ\x90\x00" + b"\x00" * 60)
    )
    assert "is kept" not in page and _reference(page) == ""
    assert _held(settings) == []


@pytest.mark.parametrize(
    "reference",
    [
        "../../config/settings.py",  # a path from the client is never opened
        signing.dumps({"f": "../../../etc/passwd", "n": "x.pdf"}, salt="inbox.held-file"),
        signing.dumps({"f": "0" * 32, "n": "x.pdf"}, salt="another-salt"),
    ],
)
def test_a_forged_reference_gives_no_file(client, reference):
    response = client.post(WRITE, write_data(body="", held_attachment=reference))
    assert response.status_code == 400
    assert (
        "The file you attached before is no longer kept: please choose it again."
        in response.content.decode()
    )
    assert not Ticket.objects.exists()


def test_a_kept_file_expires_after_a_day_and_the_next_hold_deletes_it(client, settings):
    page = _fail_without_consent(client, attachment=upload("harvest-report.pdf", PDF))
    reference = _reference(page)
    (old,) = _held(settings)
    with time_machine.travel(timezone.now() + timedelta(hours=25), tick=False):
        response = client.post(WRITE, write_data(body="", held_attachment=reference))
        assert "no longer kept" in response.content.decode()
        _fail_without_consent(client, attachment=upload("another.pdf", PDF))
        assert old not in _held(settings) and len(_held(settings)) == 1
