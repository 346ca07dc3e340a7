"""SparkPost's event webhook, with events as SparkPost posts them (a JSON array).

Format: https://developers.sparkpost.com/api/webhooks/ (each item is
{"msys": {<class>: {...}}}: message_event, track_event, unsubscribe_event; rcpt_meta
carries our metadata; bounce_class tells hard from soft bounces). SparkPost has no
signature: the basic-auth secret is the webhook's only credential.
"""

from __future__ import annotations

import zlib

from newsletter.models import Subscriber
from tests.webhook_steps import (
    ARTICLE_URL,
    EspFormat,
    Target,
    WebhookContract,
    compact,
    epoch,
    post,
)


class SparkPostFormat(EspFormat):
    esp = "sparkpost"

    def message_id(self, n: int) -> str:
        return str(84000000000000000 + n)  # the transmission id anymail records

    def body(self, kind: str, target: Target, *, event_id: str) -> str:
        common = {
            "event_id": str(zlib.crc32(event_id.encode())),
            "transmission_id": target.message_id,
            "message_id": "0e0d94b7-9085-4e3c-ab30-e3f2cd9c273e",
            "timestamp": str(epoch()),
            "rcpt_to": target.email.lower(),
            "raw_rcpt_to": target.email,
            "rcpt_meta": target.metadata,
            "rcpt_tags": ["digest"],
            "campaign_id": "issue-48",
            "friendly_from": "weekly@beltandroad.example",
            "subject": "Belt & Road Weekly No. 48",
            "ip_address": "127.0.0.1",
        }
        event_class, fields = {
            "delivered": ("message_event", {"type": "delivery", "queue_time": "3003"}),
            "hard_bounce": (
                "message_event",
                {
                    "type": "bounce",
                    "bounce_class": "10",
                    "error_code": "550",
                    "raw_reason": "550 5.1.1 <reader@example.com>... User unknown",
                    "reason": "550 5.1.1 ...User unknown",
                },
            ),
            "soft_bounce": (
                "message_event",
                {
                    "type": "bounce",
                    "bounce_class": "22",
                    "error_code": "452",
                    "raw_reason": "452 4.2.2 Mailbox full",
                    "reason": "452 4.2.2 Mailbox full",
                },
            ),
            "complaint": (
                "message_event",
                {"type": "spam_complaint", "fbtype": "abuse", "report_by": "server.isp.com"},
            ),
            "open": ("track_event", {"type": "open", "user_agent": "Mozilla/5.0"}),
            "click": (
                "track_event",
                {"type": "click", "target_link_url": ARTICLE_URL, "user_agent": "Mozilla/5.0"},
            ),
            "unsubscribe": (
                "unsubscribe_event",
                {"type": "list_unsubscribe", "mailfrom": "weekly@beltandroad.example"},
            ),
        }[kind]
        return compact([{"msys": {event_class: {**common, **fields}}}])


class TestSparkPostWebhook(WebhookContract):
    fmt = SparkPostFormat()

    def test_one_transmission_id_for_a_whole_batch_still_finds_each_reader(
        self, client, run_on_commit
    ):
        # An ESP batch call gives all its recipients one transmission id.
        first, second = self.delivery(7), self.delivery(8)
        type(second).objects.filter(pk=second.pk).update(esp_message_id=first.esp_message_id)
        second.refresh_from_db()
        with run_on_commit():
            post(client, self.fmt, self.fmt.body("complaint", Target.of(second), event_id="c"))
        statuses = dict(Subscriber.objects.values_list("pk", "status"))
        assert statuses[first.subscriber_id] == "active"
        assert statuses[second.subscriber_id] == "complained"

    def test_an_empty_ping_is_answered_and_records_nothing(self, client):
        assert post(client, self.fmt, compact([{"msys": {}}])).status_code == 200
