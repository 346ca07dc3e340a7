"""Postmark's webhooks, with events as Postmark posts them (one JSON object each).

Format: https://postmarkapp.com/developer/webhooks/webhooks-overview (RecordType
Delivery, Bounce with Type HardBounce or SoftBounce, SpamComplaint, Open, Click and
SubscriptionChange; Metadata carries ours). Postmark has no signature: the basic-auth
secret is the webhook's only credential. Only bounces carry an ID; other events are
told apart by their content.
"""

from __future__ import annotations

import uuid
import zlib

from newsletter.models import Subscriber
from tests.webhook_steps import (
    ARTICLE_URL,
    EVENT_TIME,
    EspFormat,
    Target,
    WebhookContract,
    compact,
    post,
)

WHEN = EVENT_TIME.isoformat().replace("+00:00", "Z")


class PostmarkFormat(EspFormat):
    esp = "postmark"

    def message_id(self, n: int) -> str:
        return str(uuid.UUID(int=0xA1B2 << 64 | n))

    def body(self, kind: str, target: Target, *, event_id: str) -> str:
        common = {
            "MessageID": target.message_id,
            "ServerID": 23,
            "MessageStream": "broadcast",
            "Tag": "digest",
            "Metadata": target.metadata,
        }
        bounce = {
            "RecordType": "Bounce",
            "ID": zlib.crc32(event_id.encode()),
            "Email": target.email,
            "From": "weekly@beltandroad.example",
            "BouncedAt": WHEN,
            "Subject": "Belt & Road Weekly No. 48",
            "DumpAvailable": True,
        }
        fields = {
            "delivered": {
                "RecordType": "Delivery",
                "Recipient": target.email,
                "DeliveredAt": WHEN,
                "Details": f"smtp;250 2.0.0 OK {event_id}",
            },
            "hard_bounce": {
                **bounce,
                "Type": "HardBounce",
                "TypeCode": 1,
                "Name": "Hard bounce",
                "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
                "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
                "Inactive": True,
                "CanActivate": True,
            },
            "soft_bounce": {
                **bounce,
                "Type": "SoftBounce",
                "TypeCode": 4096,
                "Name": "Soft bounce/Undeliverable",
                "Description": "Unable to temporarily deliver this email.",
                "Details": "smtp;452 4.2.2 Mailbox full",
                "Inactive": False,
                "CanActivate": True,
            },
            "complaint": {
                **bounce,
                "RecordType": "SpamComplaint",
                "Type": "SpamComplaint",
                "TypeCode": 512,
                "Name": "Spam complaint",
                "Description": "The subscriber explicitly marked this message as spam.",
                "Details": "Test spam complaint details",
                "Inactive": True,
                "CanActivate": False,
            },
            "open": {
                "RecordType": "Open",
                "FirstOpen": True,
                "Recipient": target.email,
                "ReceivedAt": WHEN,
                "Platform": "WebMail",
                "ReadSeconds": 5,
                "UserAgent": f"Mozilla/5.0 {event_id}",
                "Client": {"Name": "Chrome 35.0.1916.153", "Company": "Google"},
                "OS": {"Name": "OS X 10.7 Lion", "Company": "Apple Computer, Inc."},
                "Geo": {"CountryISOCode": "CN", "Country": "China", "City": "Beijing"},
            },
            "click": {
                "RecordType": "Click",
                "ClickLocation": "HTML",
                "Recipient": target.email,
                "ReceivedAt": WHEN,
                "OriginalLink": ARTICLE_URL,
                "Platform": "Desktop",
                "UserAgent": f"Mozilla/5.0 {event_id}",
            },
            "unsubscribe": {
                "RecordType": "SubscriptionChange",
                "Recipient": target.email,
                "ChangedAt": WHEN,
                "Origin": "Recipient",
                "SuppressSending": True,
                "SuppressionReason": "ManualSuppression",
            },
        }[kind]
        return compact({**common, **fields})


class TestPostmarkWebhook(WebhookContract):
    fmt = PostmarkFormat()

    def test_a_subscription_change_for_a_hard_bounce_bounces_the_reader(
        self, client, run_on_commit
    ):
        delivery = self.delivery()
        body = self.fmt.body("unsubscribe", Target.of(delivery), event_id="sc")
        body = body.replace("ManualSuppression", "HardBounce")
        with run_on_commit():
            post(client, self.fmt, body)
        assert Subscriber.objects.get(pk=delivery.subscriber_id).status == "bounced"
