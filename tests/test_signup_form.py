"""The country list of the signup and preferences forms, as a reader's browser gets it."""

from __future__ import annotations

import pytest

from newsletter.tokens import reader_tokens
from tests.factories import SubscriberFactory
from tests.reader_steps import (
    SUBSCRIBE,
    client,  # noqa: F401 - the fixture: requests that commit
)

pytestmark = pytest.mark.django_db


def test_it_offers_every_country_in_the_page_language(client):
    page = client.get(SUBSCRIBE).content.decode()
    assert '<select name="country"' in page
    assert '<option value="" selected>' in page
    assert '<option value="CN">China</option>' in page
    assert '<option value="ZW">Zimbabwe</option>' in page
    chinese = client.get("/zh-hans" + SUBSCRIBE).content.decode()
    assert '<option value="CN">中国</option>' in chinese


def test_it_shows_the_country_a_reader_chose_as_selected(client):
    reader = SubscriberFactory(email="amina@example.com", country="KE")
    token = reader_tokens.make_token(reader, "preferences")
    page = client.get(f"/newsletter/preferences/{token}/").content.decode()
    assert '<option value="KE" selected>Kenya</option>' in page
    assert '<option value="" selected>' not in page
