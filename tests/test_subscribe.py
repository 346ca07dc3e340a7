"""The subscription form: every field, one answer for every address, bad input refused."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.template import Context, RequestContext, Template
from django.test import Client, RequestFactory
from django.utils import timezone

from newsletter.models import ConsentRecord, Subscriber
from newsletter.suppression import suppress
from tests.factories import CategoryFactory, SubscriberFactory, default_newsletter
from tests.reader_steps import (
    SUBSCRIBE,
    CommitClient,
    client,  # noqa: F401 - the fixture: requests that commit
    html_of,
    link,
    sent_to,
    signup_data,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def sections():
    return [
        CategoryFactory(name="Economy & Trade", position=1),
        CategoryFactory(name="Finance", position=2),
        CategoryFactory(name="Infrastructure", position=3),
    ]


def test_it_shows_every_field_with_a_label_and_the_exact_consent_text(client, sections):
    response = client.get(SUBSCRIBE)
    page = response.content.decode()
    assert response.status_code == 200
    for field in ("email", "name", "organisation", "country"):
        assert f'<label for="id_{field}">' in page
    assert 'type="email" name="email"' in page and 'autocomplete="email"' in page
    assert "<legend>Sections" in page
    for section in sections:
        assert f" {section.name.replace('&', '&amp;')}</label>" in page
    consent = default_newsletter().consent_texts.get(version=1)
    assert (
        consent.text.replace("&", "&amp;").replace("'", "&#x27;") in page
    )  # the exact wording, escaped
    assert 'href="http://localhost:8000/newsletter/privacy/"' in page
    assert 'name="consent_version" value="1"' in page
    # The honeypot is there for bots and hidden from people and screen readers.
    assert '<div class="hp" aria-hidden="true">' in page
    assert 'name="captcha_1"' not in page


def test_it_serves_every_asset_itself_without_a_cdn(client):
    page = client.get(SUBSCRIBE).content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:css|js))"', page)
    assert assets == [
        "/static/newsletter/site.css",
        "/static/newsletter/focus-errors.js",
        "/static/newsletter/subscribe.js",
    ]
    assert "//" not in "".join(assets)


def test_the_privacy_page_shows_what_is_kept_and_the_consent_text(client):
    response = client.get("/newsletter/privacy/")
    assert response.status_code == 200
    assert b"What we keep" in response.content
    assert b"version 1" in response.content


def test_a_new_address_becomes_pending_and_gets_one_confirmation(client, sections):
    response = client.post(
        SUBSCRIBE,
        signup_data(email="  Li.Wei@Example.COM ", categories=[sections[1].pk, sections[2].pk]),
        HTTP_USER_AGENT="Firefox/140",
        REMOTE_ADDR="203.0.113.9",
    )
    assert response.status_code == 200
    assert b"Check your inbox" in response.content
    reader = Subscriber.objects.get()
    assert reader.email == "li.wei@example.com"
    assert reader.status == Subscriber.Status.PENDING
    assert (reader.name, reader.organisation, reader.country) == ("Li Wei", "Silk Road Bank", "CN")
    assert set(reader.categories.all()) == {sections[1], sections[2]}
    record = ConsentRecord.objects.get(subscriber=reader)
    assert (record.action, record.ip, record.user_agent, record.form) == (
        "signup",
        "203.0.113.9",
        "Firefox/140",
        "subscribe-page",
    )
    assert record.consent_text.version == 1
    (message,) = mail.outbox
    assert message.to == ["li.wei@example.com"]
    assert message.subject == "Confirm your subscription to Belt & Road Weekly"
    assert link(message, "/newsletter/confirm/") in html_of(message)
    assert "works for 7 days" in message.body


def test_choosing_no_section_means_every_section(client, sections):
    client.post(SUBSCRIBE, signup_data())
    assert Subscriber.objects.get().categories.count() == 0


def _answer(client, email: str) -> tuple[int, bytes]:
    response = client.post(SUBSCRIBE, signup_data(email=email))
    return response.status_code, response.content


@pytest.mark.parametrize("state", ["pending", "active", "unsubscribed", "erased"])
def test_it_answers_exactly_the_same_page_whatever_the_address_state(state):
    newsletter = default_newsletter()
    fresh = _answer(CommitClient(), "someone@example.com")
    Subscriber.objects.all().delete()
    if state == "erased":
        suppress(newsletter=newsletter, email="someone@example.com", reason="erased")
    else:
        SubscriberFactory(email="someone@example.com", status=state)
    assert _answer(CommitClient(), "someone@example.com") == fresh


def test_an_active_reader_gets_their_preferences_link_and_nothing_changes(client):
    reader = SubscriberFactory(email="amina@example.com", name="Amina", organisation="")
    client.post(SUBSCRIBE, signup_data(email="amina@example.com", name="Spammer", organisation="X"))
    reader.refresh_from_db()
    assert (reader.name, reader.organisation, reader.status) == ("Amina", "", "active")
    assert not reader.consent_records.exists()
    (message,) = mail.outbox
    assert message.subject == "You already subscribe to Belt & Road Weekly"
    assert "Spammer" not in message.body and "Spammer" not in html_of(message)
    assert client.get(link(message, "/newsletter/preferences/")).status_code == 200
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_pending_reader_gets_another_confirmation_only_after_a_day(client):
    client.post(SUBSCRIBE, signup_data(email="bo@example.com"))
    client.post(SUBSCRIBE, signup_data(email="bo@example.com", name="Bo Li"))
    assert len(sent_to("bo@example.com")) == 1
    assert Subscriber.objects.get().name == "Li Wei"  # a stranger's second try changes nothing
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        client.post(SUBSCRIBE, signup_data(email="bo@example.com"))
    assert len(sent_to("bo@example.com")) == 2


def test_an_unsubscribed_reader_gets_a_fresh_confirmation_and_stays_out_until_confirming(
    client,
):
    reader = SubscriberFactory(email="chen@example.com", status=Subscriber.Status.UNSUBSCRIBED)
    client.post(SUBSCRIBE, signup_data(email="chen@example.com"))
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED
    (message,) = mail.outbox
    assert message.subject == "Confirm your subscription to Belt & Road Weekly"
    client.post(link(message, "/newsletter/confirm/"))
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.ACTIVE


def test_an_erased_address_is_never_added_again_by_signup(client):
    suppress(newsletter=default_newsletter(), email="gone@example.com", reason="erased")
    response = client.post(SUBSCRIBE, signup_data(email="GONE@example.com"))
    assert response.status_code == 200
    assert not Subscriber.objects.exists()
    assert mail.outbox == []


# --- Bad input: one clear error, nothing written, nothing sent ------------------------------


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("email", "not-an-address", "Enter a valid email address"),
        ("email", "li@example.com\r\nBcc: x@example.com", "cannot contain line breaks"),
        ("email", "", "This field is required"),
        ("email", "a" * 250 + "@example.com", "at most 254 characters"),
        ("name", "Li\nWei", "on one line"),
        ("organisation", "Bank\rInjected: yes", "on one line"),
        ("name", "x" * 101, "at most 100 characters"),
        ("organisation", "x" * 151, "at most 150 characters"),
        ("country", "XX", "Select a valid choice"),
        ("consent", None, "Please tick the box to agree"),
    ],
)
def test_bad_input_gets_a_clear_error_and_changes_nothing(client, field, value, error):
    response = client.post(SUBSCRIBE, signup_data(**{field: value}))
    assert response.status_code == 400
    assert error in response.content.decode()
    assert b'role="alert"' in response.content
    assert not Subscriber.objects.exists()
    assert mail.outbox == []


def test_an_unknown_category_is_refused(client, sections):
    response = client.post(SUBSCRIBE, signup_data(categories=[sections[0].pk, 999999]))
    assert response.status_code == 400
    assert b"not one of our sections" in response.content
    assert not Subscriber.objects.exists()


def test_a_form_shown_before_the_consent_text_changed_must_be_ticked_again(client):
    response = client.post(SUBSCRIBE, signup_data(consent_version="0"))
    assert response.status_code == 400
    assert b"Our consent text changed" in response.content
    assert not Subscriber.objects.exists()


def test_an_idn_domain_is_stored_in_ascii(client):
    client.post(SUBSCRIBE, signup_data(email="Leser@Bücher.DE"))
    assert Subscriber.objects.get().email == "leser@xn--bcher-kva.de"
    assert mail.outbox[0].to == ["leser@xn--bcher-kva.de"]


def test_the_typed_name_is_kept_when_the_form_comes_back_with_an_error(client):
    response = client.post(SUBSCRIBE, signup_data(name="Li Wei", email="broken"))
    assert b'value="Li Wei"' in response.content


# --- The embeddable form ---------------------------------------------------------------------


def test_the_plain_html_snippet_posts_across_origins_to_a_prefilled_page_that_writes_nothing():
    client = Client(enforce_csrf_checks=True)  # the portal's page carries no token of ours
    response = client.post(
        "/newsletter/subscribe/embed/",
        {"email": "kofi@example.com", "name": "Kofi\r\nInjected"},
        HTTP_ORIGIN="https://portal.example.com",
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert 'value="kofi@example.com"' in page
    assert 'value="Kofi Injected"' in page
    assert "Almost done" in page
    assert 'name="csrfmiddlewaretoken"' in page  # our form, sent from our origin
    assert not Subscriber.objects.exists()
    assert mail.outbox == []


def test_the_snippet_page_shows_html_that_posts_to_our_absolute_url(client, site):
    page = client.get("/newsletter/subscribe/embed/").content.decode()
    assert (
        "&lt;form action=&quot;https://weekly.example.org/newsletter/subscribe/embed/&quot; "
        "method=&quot;post&quot;" in page
    )
    assert "Belt &amp; Road Weekly Subscription Form" in page


def test_the_template_tag_puts_the_whole_form_on_any_page(client):
    request = RequestFactory().get("/any/page/")
    html = Template('{% load newsletter_forms %}{% subscribe_form "sidebar" %}').render(
        RequestContext(request, {})
    )
    assert 'action="/newsletter/subscribe/"' in html
    assert 'name="form_name" value="sidebar"' in html
    assert 'name="stamp"' in html and 'name="consent"' in html
    assert Template("{% load newsletter_forms %}").render(Context({})) == ""


def test_a_signup_records_which_form_it_came_from(client):
    client.post(SUBSCRIBE, signup_data(form_name="Article Sidebar"))
    assert ConsentRecord.objects.get().form == "article-sidebar"
    assert Subscriber.objects.get().source == "article-sidebar"
