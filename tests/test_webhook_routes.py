"""Only the tracking webhooks of the ESPs we support are routed, and only while configured."""

from __future__ import annotations

import pytest

from newsletter.models import TrackingEvent
from tests.factories import DeliveryFactory
from tests.test_webhooks_postmark import PostmarkFormat
from tests.webhook_steps import SECRET, Target, auth_header, post

pytestmark = pytest.mark.django_db

SUPPORTED = ["mailgun", "sendgrid", "postmark", "sparkpost", "mailjet"]


@pytest.fixture(autouse=True)
def _secret(settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}
    settings.NEWSLETTER_WEBHOOK_ESPS = list(SUPPORTED)


@pytest.mark.parametrize(
    "url",
    [
        # ESPs this project does not send through: never routed.
        "/anymail/amazon_ses/tracking/",
        "/anymail/brevo/tracking/",
        "/anymail/postal/tracking/",
        "/anymail/resend/tracking/",
        "/anymail/mandrill/",
        "/anymail/unisender_go/tracking/",
        # Inbound mail: nothing here reads it.
        "/anymail/mailgun/inbound/",
        "/anymail/mailgun/inbound_mime/",
        "/anymail/postmark/inbound/",
        "/anymail/sendgrid/inbound/",
        "/anymail/sparkpost/inbound/",
        "/anymail/mailjet/inbound/",
    ],
)
def test_every_other_anymail_url_is_a_404(client, url):
    response = client.post(url, "{}", content_type="application/json", **auth_header())
    assert response.status_code == 404
    assert TrackingEvent.objects.count() == 0


def test_a_supported_esp_is_routed_only_while_it_is_configured(client, settings):
    settings.NEWSLETTER_WEBHOOK_ESPS = ["postmark"]
    body = {"data": "{}", "content_type": "application/json", **auth_header()}
    assert client.post("/anymail/mailgun/tracking/", **body).status_code == 404
    assert client.post("/anymail/postmark/tracking/", **body).status_code == 400  # routed


@pytest.mark.parametrize(
    ("backend", "setting", "esp"),
    [
        ("anymail.backends.postmark.EmailBackend", "ANYMAIL_POSTMARK_SERVER_TOKEN", "postmark"),
        # The project's own Mailgun backend (newsletter/sending/mailgun.py) is Mailgun too.
        ("newsletter.sending.mailgun.EmailBackend", "ANYMAIL_MAILGUN_API_KEY", "mailgun"),
    ],
)
def test_the_default_is_the_esp_of_the_email_backend(backend, setting, esp):
    from tests.settings_steps import run

    result = run(
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.NEWSLETTER_WEBHOOK_ESPS)",
        EMAIL_BACKEND=backend,
        **{setting: "x"},
    )
    assert result.stdout.strip() == f"['{esp}']", result.stderr


def test_an_unsupported_esp_in_the_setting_stops_start_up():
    from tests.settings_steps import load

    result = load(NEWSLETTER_WEBHOOK_ESPS="mailgun,amazon_ses")
    assert result.returncode != 0
    assert "NEWSLETTER_WEBHOOK_ESPS names 'amazon_ses'" in result.stderr


def test_a_webhook_for_a_host_that_is_not_ours_is_refused_and_stores_nothing(client):
    response = client.post(
        "/anymail/postmark/tracking/",
        '{"RecordType": "Open", "MessageID": "m-1"}',
        content_type="application/json",
        HTTP_HOST="evil.example.net",
        **auth_header(),
    )
    assert response.status_code == 400
    assert TrackingEvent.objects.count() == 0


def test_a_webhook_answers_without_a_session_or_language_cookie(client):
    body = PostmarkFormat().body("open", Target.of(DeliveryFactory()), event_id="o-1")
    response = post(client, PostmarkFormat(), body)
    assert response.status_code == 200
    assert TrackingEvent.objects.count() == 1
    assert not response.cookies
    assert "Content-Language" not in response
    assert response["Content-Length"] == str(len(response.content))
