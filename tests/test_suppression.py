"""Suppressed addresses are kept only as a keyed hash and recognised in any spelling."""

import pytest

from newsletter.models import Suppression
from newsletter.suppression import email_hash, is_suppressed, normalise_email, suppress
from tests.factories import default_newsletter

pytestmark = pytest.mark.django_db


def test_it_normalises_case_space_and_idn_domains():
    assert normalise_email("  Li.Wei@Example.COM ") == "li.wei@example.com"
    assert normalise_email("user@bücher.de") == "user@xn--bcher-kva.de"


def test_a_suppressed_address_is_recognised_in_any_spelling_and_not_stored():
    newsletter = default_newsletter()
    suppress(newsletter=newsletter, email="Gone@Example.com", reason="erased")
    suppress(newsletter=newsletter, email="gone@example.com ", reason="erased")
    assert is_suppressed(newsletter=newsletter, email="GONE@example.COM")
    assert not is_suppressed(newsletter=newsletter, email="other@example.com")
    row = Suppression.objects.get()
    assert row.email_hash == email_hash("gone@example.com")
    assert "gone" not in row.email_hash and len(row.email_hash) == 64
