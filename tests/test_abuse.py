"""Bots send nobody anything, people are told the truth, nobody gets more than one email a day."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from captcha.models import CaptchaStore
from django.core import mail
from django.test import RequestFactory
from django.utils import timezone

from newsletter import abuse
from newsletter.models import Subscriber
from tests.reader_steps import (
    SUBSCRIBE,
    CommitClient,
    aged_stamp,
    client,  # noqa: F401 - the fixture: requests that commit
    sent_to,
    signup_data,
)

pytestmark = pytest.mark.django_db


def _inbox_page(client) -> bytes:
    return client.post(SUBSCRIBE, signup_data(email="good@example.com")).content


def _solve(page: bytes) -> dict:
    """Return the captcha fields of a page, answered correctly (the answer is in the store)."""
    key = re.search(rb'name="captcha_0" value="([0-9a-f]+)"', page).group(1).decode()
    return {"captcha_0": key, "captcha_1": CaptchaStore.objects.get(hashkey=key).response}


def test_only_a_filled_honeypot_gets_the_silent_answer():
    good = _inbox_page(CommitClient())
    Subscriber.objects.all().delete()
    mail.outbox.clear()
    response = CommitClient().post(
        SUBSCRIBE, signup_data(email="good@example.com", website="http://spam.example")
    )
    assert (response.status_code, response.content) == (200, good)
    assert not Subscriber.objects.exists()
    assert mail.outbox == []


@pytest.mark.parametrize(
    ("trap", "overrides"),
    [
        ("too fast", {"stamp": "FRESH"}),
        ("no stamp", {"stamp": ""}),
        ("forged stamp", {"stamp": "1700000000:forged"}),
    ],
)
def test_a_form_sent_too_fast_comes_back_with_the_code_and_says_why(trap, overrides):
    client = CommitClient()
    if overrides.get("stamp") == "FRESH":
        overrides["stamp"] = abuse.form_stamp()
    response = client.post(SUBSCRIBE, signup_data(email="auto@example.com", **overrides))
    page = response.content.decode().replace("&#x27;", "'")
    assert response.status_code == 400
    assert "You sent the form back very quickly" in page
    assert "We have sent" not in page and 'value="auto@example.com"' in page
    assert 'name="captcha_1"' in page
    assert not Subscriber.objects.exists() and mail.outbox == []
    # The person types the code and sends again: it goes through.
    again = client.post(
        SUBSCRIBE, signup_data(email="auto@example.com", **_solve(response.content))
    )
    assert b"Check your inbox" in again.content
    assert len(sent_to("auto@example.com")) == 1


def test_an_empty_form_sent_too_fast_shows_its_errors_not_a_blank_address():
    response = CommitClient().post(
        SUBSCRIBE, {"stamp": abuse.form_stamp(), "website": "", "consent_version": "1"}
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert "This field is required" in page or "Enter a valid email" in page
    assert "We have sent an email to" not in page
    assert mail.outbox == []


def test_the_minimum_fill_time_is_configurable(client, settings):
    settings.NEWSLETTER_MIN_FILL_SECONDS = 60
    response = client.post(SUBSCRIBE, signup_data(stamp=aged_stamp(30)))
    assert response.status_code == 400
    assert not Subscriber.objects.exists()
    client.post(SUBSCRIBE, signup_data(stamp=aged_stamp(61)))
    assert Subscriber.objects.count() == 1


def test_a_form_left_open_for_a_day_comes_back_to_be_sent_again(client):
    response = client.post(SUBSCRIBE, signup_data(stamp=aged_stamp(2 * 86400)))
    assert response.status_code == 200
    assert b"This page was open for a long time" in response.content
    assert b'value="li.wei@example.com"' in response.content
    assert not Subscriber.objects.exists()


def test_a_bot_hammering_one_address_from_many_ips_sends_it_one_email_a_day(settings):
    settings.NEWSLETTER_IP_SOFT_LIMIT = 50  # many IPs: the captcha never shows
    settings.NEWSLETTER_IP_HARD_LIMIT = 100
    for n in range(30):
        CommitClient().post(
            SUBSCRIBE, signup_data(email="victim@example.com"), REMOTE_ADDR=f"198.51.100.{n}"
        )
    assert len(sent_to("victim@example.com")) == 1
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        CommitClient().post(
            SUBSCRIBE, signup_data(email="victim@example.com"), REMOTE_ADDR="192.0.2.1"
        )
    assert len(sent_to("victim@example.com")) == 2


def test_the_email_interval_is_configurable(client, settings):
    settings.NEWSLETTER_EMAIL_INTERVAL_HOURS = 48
    client.post(SUBSCRIBE, signup_data(email="x@example.com"))
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        client.post(SUBSCRIBE, signup_data(email="x@example.com"))
    assert len(sent_to("x@example.com")) == 1


def test_past_the_address_limit_the_form_comes_back_saying_so(settings):
    settings.NEWSLETTER_ADDRESS_LIMIT = 2
    for n in range(2):
        response = CommitClient().post(
            SUBSCRIBE, signup_data(email="limit@example.com"), REMOTE_ADDR=f"198.51.100.{n}"
        )
        assert response.status_code == 200
    response = CommitClient().post(
        SUBSCRIBE, signup_data(email="limit@example.com"), REMOTE_ADDR="198.51.100.9"
    )
    assert response.status_code == 429
    assert b"given to us many times today" in response.content
    assert b"We have sent" not in response.content
    assert len(sent_to("limit@example.com")) == 1


def test_past_the_soft_limit_the_form_asks_for_the_identifying_code(client, settings):
    settings.NEWSLETTER_IP_SOFT_LIMIT = 2
    assert b'name="captcha_1"' not in client.get(SUBSCRIBE).content
    for n in range(2):
        client.post(SUBSCRIBE, signup_data(email=f"p{n}@example.com"))
    page = client.get(SUBSCRIBE).content
    assert b'name="captcha_1"' in page
    assert b"Identifying code" in page
    assert b'name="reload_code"' in page
    # Without the code: the form again, with the code and a sentence saying why.
    response = client.post(SUBSCRIBE, signup_data(email="third@example.com"))
    assert response.status_code == 400
    assert b"Many forms were sent from your network in the last hour" in response.content
    assert b'name="captcha_1"' in response.content
    assert sent_to("third@example.com") == []
    # With the right code it goes through.
    response = client.post(
        SUBSCRIBE, signup_data(email="third@example.com", **_solve(response.content))
    )
    assert b"Check your inbox" in response.content
    assert len(sent_to("third@example.com")) == 1


def test_a_wrong_code_gets_a_new_picture_and_sends_nothing(client, settings):
    settings.NEWSLETTER_CAPTCHA_ALWAYS = True
    page = client.get(SUBSCRIBE).content
    answer = _solve(page)
    response = client.post(SUBSCRIBE, signup_data(captcha_0=answer["captcha_0"], captcha_1="wrong"))
    assert response.status_code == 400
    assert b"did not match" in response.content
    assert _solve(response.content)["captcha_0"] != answer["captcha_0"]
    assert b'value="li.wei@example.com"' in response.content
    assert mail.outbox == []
    # A code can be tried once only: the right answer to the old picture fails now.
    response = client.post(SUBSCRIBE, signup_data(**answer))
    assert response.status_code == 400


def test_the_captcha_can_be_always_on(client, settings):
    settings.NEWSLETTER_CAPTCHA_ALWAYS = True
    assert b'name="captcha_1"' in client.get(SUBSCRIBE).content


def test_the_reload_button_works_without_javascript_and_keeps_what_was_typed(client, settings):
    settings.NEWSLETTER_CAPTCHA_ALWAYS = True
    first = _solve(client.get(SUBSCRIBE).content)
    response = client.post(
        SUBSCRIBE, signup_data(name="Kofi", reload_code="1", captcha_0=first["captcha_0"])
    )
    assert response.status_code == 200
    assert b'value="Kofi"' in response.content
    assert _solve(response.content)["captcha_0"] != first["captcha_0"]
    assert not Subscriber.objects.exists() and mail.outbox == []


def test_the_reload_button_with_javascript_gets_a_new_picture(client):
    response = client.get("/captcha/refresh/", HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    data = response.json()
    assert data["image_url"] == f"/captcha/image/{data['key']}/"
    assert client.get(data["image_url"])["Content-Type"] == "image/png"


def test_past_the_hard_limit_even_a_solved_code_sends_nothing(client, settings):
    settings.NEWSLETTER_IP_SOFT_LIMIT = 1
    settings.NEWSLETTER_IP_HARD_LIMIT = 3
    for n in range(3):
        page = client.get(SUBSCRIBE).content
        extra = _solve(page) if b"captcha_0" in page else {}
        client.post(SUBSCRIBE, signup_data(email=f"h{n}@example.com", **extra))
    assert len(mail.outbox) == 3
    page = client.get(SUBSCRIBE).content
    response = client.post(SUBSCRIBE, signup_data(email="h4@example.com", **_solve(page)))
    assert response.status_code == 429
    assert b"Too many forms were sent from your network" in response.content
    assert b"Check your inbox" not in response.content
    assert sent_to("h4@example.com") == []
    assert not Subscriber.objects.filter(email="h4@example.com").exists()


def test_ipv6_clients_are_counted_by_their_slash_64():
    assert abuse.ip_bucket("2001:db8:1:2:aaaa::1") == abuse.ip_bucket("2001:db8:1:2:bbbb::9")
    assert abuse.ip_bucket("2001:db8:1:3::1") != abuse.ip_bucket("2001:db8:1:2::1")
    assert abuse.ip_bucket("203.0.113.4") == "203.0.113.4"
    assert abuse.ip_bucket("nonsense") == abuse.ip_bucket(None) == "unknown"


def test_the_client_ip_comes_through_trusted_proxies_only(settings):
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7"
    )
    assert abuse.client_ip(request) == "10.0.0.2"  # no proxy configured: the header is ignored
    settings.NEWSLETTER_PROXY_COUNT = 1
    assert abuse.client_ip(request) == "203.0.113.7"  # what the client typed (6.6.6.6) is not
    bad = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="garbage")
    assert abuse.client_ip(bad) == "10.0.0.2"


def test_the_limits_are_shared_by_every_process_through_the_cache(client, settings):
    """A second client (another web process) sees the first one's count for the same IP."""
    settings.NEWSLETTER_IP_SOFT_LIMIT = 1
    client.post(SUBSCRIBE, signup_data(email="one@example.com"), REMOTE_ADDR="192.0.2.50")
    other = CommitClient()
    assert b"captcha_1" in other.get(SUBSCRIBE, REMOTE_ADDR="192.0.2.50").content
    assert b"captcha_1" not in other.get(SUBSCRIBE, REMOTE_ADDR="192.0.2.51").content


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"NEWSLETTER_IP_SOFT_LIMIT": "30", "NEWSLETTER_IP_HARD_LIMIT": "10"},
            "NEWSLETTER_IP_SOFT_LIMIT (30) must be below NEWSLETTER_IP_HARD_LIMIT (10)",
        ),
        (
            {"NEWSLETTER_EMAIL_INTERVAL_HOURS": "0"},
            "NEWSLETTER_EMAIL_INTERVAL_HOURS=0 is too small",
        ),
        ({"NEWSLETTER_CAPTCHA_ALWAYS": "sometimes"}, "NEWSLETTER_CAPTCHA_ALWAYS='sometimes'"),
    ],
)
def test_a_bad_limit_setting_stops_start_up_naming_it(env, message):
    from tests.settings_steps import load

    result = load(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr
