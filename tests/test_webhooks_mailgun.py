"""Mailgun's tracking webhook, with events as Mailgun posts them (JSON webhooks, signed).

Format: https://documentation.mailgun.com/docs/mailgun/user-manual/tracking-messages/
(event-data with delivery-status, user-variables, message.headers.message-id; a
signature block of timestamp, token and HMAC-SHA256 with the webhook signing key).
"""

from __future__ import annotations

import hashlib
import hmac

from tests.webhook_steps import (
    ARTICLE_URL,
    EspFormat,
    Target,
    WebhookContract,
    compact,
    epoch,
    post,
)

SIGNING_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"


class MailgunFormat(EspFormat):
    esp = "mailgun"
    settings = {"MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY}

    def message_id(self, n: int) -> str:
        return f"<20261127093000.{n}.4A7D468E9BC18C5D@mg.beltandroad.example>"

    def body(self, kind: str, target: Target, *, event_id: str, signing_key=SIGNING_KEY) -> str:
        data = {
            "id": f"Ase7i2zsRYeDXztHGENqRA-{event_id}",
            "timestamp": epoch() + 0.0,
            "log-level": "info",
            "recipient": target.email,
            "recipient-domain": target.email.partition("@")[2],
            "tags": ["digest", "issue-48"],
            "user-variables": target.metadata,
            "message": {
                "headers": {
                    "to": target.email,
                    "message-id": target.message_id.strip("<>"),
                    "from": "Belt & Road Weekly <weekly@beltandroad.example>",
                    "subject": "Belt & Road Weekly No. 48",
                },
                "attachments": [],
                "size": 48211,
            },
        }
        data.update(
            {
                "delivered": {
                    "event": "delivered",
                    "delivery-status": {"code": 250, "message": "OK", "description": ""},
                },
                "hard_bounce": {
                    "event": "failed",
                    "severity": "permanent",
                    "reason": "bounce",
                    "log-level": "error",
                    "delivery-status": {
                        "code": 550,
                        "message": "5.1.1 The email account that you tried to reach does not exist.",
                        "description": "",
                    },
                },
                # Mailgun retried the mailbox-full (4xx) answers until it gave up: "old".
                "soft_bounce": {
                    "event": "failed",
                    "severity": "permanent",
                    "reason": "old",
                    "log-level": "error",
                    "delivery-status": {
                        "code": 452,
                        "message": "4.2.2 The email account that you tried to reach is over quota.",
                        "description": "Too old",
                    },
                },
                "complaint": {"event": "complained"},
                "open": {
                    "event": "opened",
                    "client-info": {"client-name": "Thunderbird", "user-agent": "Mozilla/5.0"},
                    "geolocation": {"country": "CN", "region": "BJ", "city": "Beijing"},
                },
                "click": {
                    "event": "clicked",
                    "url": ARTICLE_URL,
                    "client-info": {"client-name": "Chrome", "user-agent": "Mozilla/5.0"},
                },
                "unsubscribe": {"event": "unsubscribed"},
            }[kind]
        )
        token = hashlib.sha256(event_id.encode()).hexdigest()[:50]
        timestamp = str(epoch())
        signature = hmac.new(
            signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
        ).hexdigest()
        return compact(
            {
                "signature": {"timestamp": timestamp, "token": token, "signature": signature},
                "event-data": data,
            }
        )


class TestMailgunWebhook(WebhookContract):
    fmt = MailgunFormat()

    def test_it_refuses_an_event_signed_with_another_key(self, client, run_on_commit):
        delivery = self.delivery()
        body = self.fmt.body(
            "complaint", Target.of(delivery), event_id="x", signing_key="key-not-ours"
        )
        with run_on_commit():
            response = post(client, self.fmt, body)
        assert response.status_code == 400
        delivery.subscriber.refresh_from_db()
        assert delivery.subscriber.status == "active"

    def test_a_temporary_failure_mailgun_will_retry_changes_nothing(self, client, run_on_commit):
        delivery = self.delivery()
        body = self.fmt.body("soft_bounce", Target.of(delivery), event_id="retrying")
        body = body.replace('"severity":"permanent"', '"severity":"temporary"')
        # The signature covers only timestamp and token, so the edited body stays valid.
        with run_on_commit():
            assert post(client, self.fmt, body).status_code == 200
        delivery.refresh_from_db()
        delivery.subscriber.refresh_from_db()
        assert (delivery.status, delivery.subscriber.soft_bounce_count) == ("sent", 0)

    def test_a_send_mailgun_dropped_for_its_complaint_list_mirrors_the_complaint(
        self, client, run_on_commit
    ):
        delivery = self.delivery()
        body = self.fmt.body("hard_bounce", Target.of(delivery), event_id="dropped")
        body = body.replace('"reason":"bounce"', '"reason":"suppress-complaint"')
        with run_on_commit():
            post(client, self.fmt, body)
        delivery.refresh_from_db()
        delivery.subscriber.refresh_from_db()
        assert (delivery.status, delivery.subscriber.status) == ("failed", "complained")
