"""What every ESP's tracking webhook must do, written once and run for each ESP.

Each tests/test_webhooks_<esp>.py writes events in that ESP's documented format (an
`EspFormat`) and subclasses `WebhookContract`, whose tests post them the way the ESP
posts them and check what an editor would see: the reader's status, the delivery's
counters, the suppression list and consent records.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from django.db import connection

from newsletter.models import ConsentRecord, Delivery, Subscriber, TrackingEvent
from newsletter.suppression import is_suppressed
from tests.factories import DeliveryFactory

SECRET = "esp-hook:Wq8n3TzK"
EVENT_TIME = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
ARTICLE_URL = "https://portal.example.com/beltandroad/piraeus-port.html?utm_campaign=brw-48"
KINDS = ["delivered", "hard_bounce", "soft_bounce", "complaint", "open", "click", "unsubscribe"]


@dataclass
class Target:
    """What an ESP knows about one message: its id, recipient and our metadata."""

    message_id: str
    email: str
    metadata: dict = field(default_factory=dict)

    @classmethod
    def of(cls, delivery: Delivery) -> Target:
        return cls(
            message_id=delivery.esp_message_id,
            email=delivery.subscriber.email,
            metadata={
                "issue": str(delivery.issue_id),
                "subscriber": str(delivery.subscriber_id),
                "delivery": str(delivery.pk),
            },
        )


class EspFormat:
    """One ESP's webhook: where it posts, how it signs, and its events' JSON."""

    esp = ""  # the URL segment: /anymail/<esp>/tracking/
    settings: dict = {}

    def message_id(self, n: int) -> str:
        """Return the message id the ESP gives (and anymail records) for message `n`."""
        raise NotImplementedError

    def body(self, kind: str, target: Target, *, event_id: str) -> str:
        raise NotImplementedError

    def headers(self, body: str) -> dict[str, str]:
        return {}


def auth_header(secret: str = SECRET) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}


def post(client, esp: EspFormat, body: str, *, auth: dict | None = None, headers=None):
    url = f"/anymail/{esp.esp}/tracking/"
    all_headers = {**(auth_header() if auth is None else auth), **esp.headers(body)}
    all_headers.update(headers or {})
    return client.post(url, data=body, content_type="application/json", headers=all_headers)


def assert_outcome(kind: str, delivery: Delivery, esp: str) -> None:
    """Check what each kind of event did, as the ledger and the reader's record show it."""
    delivery.refresh_from_db()
    reader = Subscriber.objects.get(pk=delivery.subscriber_id)
    event = TrackingEvent.objects.get()
    assert event.delivery_id == delivery.pk
    assert event.processed_at is not None
    suppressed = is_suppressed(newsletter=reader.newsletter, email=reader.email)
    withdrawals = list(
        ConsentRecord.objects.filter(
            subscriber=reader, action=ConsentRecord.Action.WITHDRAW
        ).values_list("method", flat=True)
    )
    expected = {
        "delivered": ("sent", "active", False, []),
        "hard_bounce": ("bounced", "bounced", True, []),
        "soft_bounce": ("bounced", "active", False, []),
        "complaint": ("complained", "complained", True, ["spam complaint"]),
        "open": ("sent", "active", False, []),
        "click": ("sent", "active", False, []),
        "unsubscribe": ("sent", "unsubscribed", False, [f"{esp} unsubscribe"]),
    }[kind]
    assert (delivery.status, reader.status, suppressed, withdrawals) == expected
    if kind == "soft_bounce":
        assert reader.soft_bounce_count == 1
        assert event.bounce_kind == "soft" and event.outcome == "soft-bounce"
    if kind == "hard_bounce":
        assert event.bounce_kind == "hard" and event.outcome == "bounced"
    if kind == "open":
        assert (delivery.open_count, delivery.opened_at) == (1, EVENT_TIME)
    if kind == "click":
        assert (delivery.click_count, delivery.clicked_at) == (1, EVENT_TIME)
        assert delivery.opened_at == EVENT_TIME  # a click proves the email was opened
        assert event.click_url == ARTICLE_URL
    if kind not in ("open", "click"):
        assert (delivery.open_count, delivery.click_count) == (0, 0)


@pytest.mark.django_db
class WebhookContract:
    """The tests every ESP's webhook passes; subclasses set `fmt`."""

    fmt: EspFormat

    @pytest.fixture(autouse=True)
    def _webhook_settings(self, settings):
        settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET, **self.fmt.settings}
        settings.NEWSLETTER_WEBHOOK_ESPS = [self.fmt.esp]

    def delivery(self, n: int = 1, **kwargs) -> Delivery:
        return DeliveryFactory(esp_message_id=self.fmt.message_id(n), **kwargs)

    @pytest.mark.parametrize("kind", KINDS)
    def test_it_applies_the_policy_to_each_kind_of_event(self, kind, client, run_on_commit):
        delivery = self.delivery()
        body = self.fmt.body(kind, Target.of(delivery), event_id=f"{kind}-1")
        with run_on_commit():
            response = post(client, self.fmt, body)
        assert response.status_code == 200
        assert_outcome(kind, delivery, self.fmt.esp)

    def test_it_drops_a_duplicate_by_the_esp_event_id(self, client, run_on_commit):
        delivery = self.delivery()
        body = self.fmt.body("open", Target.of(delivery), event_id="same-event")
        with run_on_commit():
            first = post(client, self.fmt, body)
            again = post(client, self.fmt, body)
        assert (first.status_code, again.status_code) == (200, 200)  # the ESP stops retrying
        assert TrackingEvent.objects.count() == 1
        delivery.refresh_from_db()
        assert delivery.open_count == 1

    def test_it_refuses_a_wrong_secret_and_changes_nothing(self, client, run_on_commit):
        delivery = self.delivery()
        body = self.fmt.body("complaint", Target.of(delivery), event_id="forged")
        with run_on_commit():
            response = post(client, self.fmt, body, auth=auth_header("esp-hook:guess"))
        assert response.status_code == 400
        assert TrackingEvent.objects.count() == 0
        assert Subscriber.objects.get(pk=delivery.subscriber_id).status == "active"

    def test_it_refuses_a_request_without_credentials_and_changes_nothing(
        self, client, run_on_commit
    ):
        delivery = self.delivery()
        body = self.fmt.body("hard_bounce", Target.of(delivery), event_id="anonymous")
        with run_on_commit():
            response = post(client, self.fmt, body, auth={})
        assert response.status_code == 400
        assert TrackingEvent.objects.count() == 0
        assert Subscriber.objects.get(pk=delivery.subscriber_id).status == "active"

    @pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailInsecureWebhookWarning")
    def test_it_refuses_every_request_while_no_secret_is_configured(
        self, client, settings, run_on_commit
    ):
        settings.ANYMAIL = {k: v for k, v in settings.ANYMAIL.items() if k != "WEBHOOK_SECRET"}
        delivery = self.delivery()
        body = self.fmt.body("complaint", Target.of(delivery), event_id="open-door")
        with run_on_commit():
            response = post(client, self.fmt, body, auth={})
        assert response.status_code == 400
        assert TrackingEvent.objects.count() == 0

    def test_it_answers_400_to_malformed_json_and_changes_nothing(self, client, run_on_commit):
        self.delivery()
        with run_on_commit():
            response = post(client, self.fmt, '{"event": "bounce", ')
        assert response.status_code == 400
        assert TrackingEvent.objects.count() == 0

    def test_it_answers_400_to_a_truncated_body_and_changes_nothing(self, client, run_on_commit):
        delivery = self.delivery()
        body = self.fmt.body("hard_bounce", Target.of(delivery), event_id="cut")
        with run_on_commit():
            response = post(client, self.fmt, body[: len(body) // 2])
        assert response.status_code == 400
        assert TrackingEvent.objects.count() == 0
        assert Subscriber.objects.get(pk=delivery.subscriber_id).status == "active"

    def test_it_answers_400_to_deeply_nested_json_and_changes_nothing(
        self, client, run_on_commit
    ):
        self.delivery()
        with run_on_commit():
            response = post(client, self.fmt, "[" * 100_000 + "]" * 100_000)
        assert response.status_code == 400
        assert TrackingEvent.objects.count() == 0

    def test_it_stores_an_event_whose_text_holds_a_nul_and_applies_it(
        self, client, run_on_commit
    ):
        # PostgreSQL refuses NUL in text and jsonb; the event must still count.
        delivery = self.delivery()
        body = with_nul(self.fmt.body("hard_bounce", Target.of(delivery), event_id="nul-1"))
        with run_on_commit():
            response = post(client, self.fmt, body)
        assert response.status_code == 200
        event = TrackingEvent.objects.get()
        assert "\x00" not in json.dumps(event.payload) and "\u0000" not in json.dumps(event.payload)
        assert event.payload["esp_event"] and "diagnostic" in json.dumps(event.payload)
        assert Subscriber.objects.get(pk=delivery.subscriber_id).status == "bounced"

    def test_it_answers_404_while_its_esp_is_not_configured(self, client, settings):
        settings.NEWSLETTER_WEBHOOK_ESPS = []
        delivery = self.delivery()
        body = self.fmt.body("complaint", Target.of(delivery), event_id="elsewhere")
        response = post(client, self.fmt, body)
        assert response.status_code == 404
        assert TrackingEvent.objects.count() == 0

    def test_an_event_that_cannot_be_stored_is_logged_and_answered_for_a_retry(
        self, client, caplog, run_on_commit
    ):
        delivery = self.delivery()
        body = self.fmt.body("hard_bounce", Target.of(delivery), event_id="retry-me")
        table = TrackingEvent._meta.db_table
        # A real storage failure: the table is gone for the length of one request.
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_away")
        try:
            response = post(client, self.fmt, body)
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"ALTER TABLE {table}_away RENAME TO {table}")
        assert response.status_code == 503
        assert response["Retry-After"]
        [record] = [r for r in caplog.records if "could not be stored" in r.getMessage()]
        if self.fmt.esp != "mailjet":  # Mailjet's events carry no id
            assert record.args[1] != "without an id"  # the ESP's own id, to find it later
        with run_on_commit():
            again = post(client, self.fmt, body)  # the ESP's retry
        assert again.status_code == 200
        assert Subscriber.objects.get(pk=delivery.subscriber_id).status == "bounced"

    def test_it_records_an_event_for_an_unknown_message_and_changes_no_reader(
        self, client, run_on_commit
    ):
        bystander = self.delivery()
        stranger = Target(message_id=self.fmt.message_id(999), email="someone@elsewhere.example")
        with run_on_commit():
            response = post(
                client, self.fmt, self.fmt.body("hard_bounce", stranger, event_id="stray")
            )
        assert response.status_code == 200
        event = TrackingEvent.objects.get()
        assert (event.delivery, event.outcome) == (None, "unmatched")
        assert Subscriber.objects.get(pk=bystander.subscriber_id).status == "active"

    def test_it_finds_the_delivery_by_metadata_before_its_message_id_is_recorded(
        self, client, run_on_commit
    ):
        delivery = self.delivery()
        target = Target.of(delivery)
        Delivery.objects.filter(pk=delivery.pk).update(esp_message_id="")
        with run_on_commit():
            post(client, self.fmt, self.fmt.body("hard_bounce", target, event_id="early"))
        assert Subscriber.objects.get(pk=delivery.subscriber_id).status == "bounced"

    def test_the_receiver_only_stores_the_event_and_leaves_the_work_to_a_task(
        self, client, django_capture_on_commit_callbacks, django_assert_max_num_queries
    ):
        delivery = self.delivery()
        body = self.fmt.body("complaint", Target.of(delivery), event_id="fast")
        with django_capture_on_commit_callbacks() as enqueued, django_assert_max_num_queries(3):
            response = post(client, self.fmt, body)  # one INSERT, in a savepoint
        assert response.status_code == 200
        assert len(enqueued) == 1  # one task for the event, run after the commit
        event = TrackingEvent.objects.get()
        assert (event.processed_at, event.delivery) == (None, None)
        assert Subscriber.objects.get(pk=delivery.subscriber_id).status == "active"

        enqueued[0]()  # the task
        assert Subscriber.objects.get(pk=delivery.subscriber_id).status == "complained"


def with_nul(body: str) -> str:
    """Return `body` with a NUL-laden diagnostic field added to each event in it."""

    def add(event):
        if isinstance(event, dict):
            event["diagnostic\u0000"] = "550 5.1.1 no such user\x00\x07 here"
        return event

    data = json.loads(body)
    data = [add(item) for item in data] if isinstance(data, list) else add(data)
    return json.dumps(data)


def compact(data) -> str:
    return json.dumps(data, separators=(",", ":"))


def epoch(moment: datetime = EVENT_TIME) -> int:
    return int(moment.timestamp())
