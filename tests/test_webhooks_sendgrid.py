"""SendGrid's Event Webhook, with events as SendGrid posts them (a JSON array, signed).

Format: https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event
(custom_args such as anymail_id and our metadata come back as top-level fields; a
bounce's "type" is "bounce" for a hard bounce and "blocked" for a soft one). With a
verification key set, SendGrid's ECDSA signature over timestamp + body is checked too.
"""

from __future__ import annotations

import base64
import uuid

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.webhook_steps import (
    ARTICLE_URL,
    EspFormat,
    Target,
    WebhookContract,
    compact,
    epoch,
    post,
)

pytestmark = pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")

PRIVATE_KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC_KEY = "".join(
    PRIVATE_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
    .splitlines()[1:-1]
)


class SendGridFormat(EspFormat):
    esp = "sendgrid"
    settings = {"SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": PUBLIC_KEY}

    def message_id(self, n: int) -> str:
        return str(uuid.UUID(int=n))  # anymail's own id, sent as custom_args.anymail_id

    def body(self, kind: str, target: Target, *, event_id: str) -> str:
        event = {
            "email": target.email,
            "timestamp": epoch(),
            "smtp-id": f"<{event_id}@ismtpd0001p1sin1.sendgrid.net>",
            "sg_event_id": base64.b64encode(f"sg-{event_id}".encode()).decode(),
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
            "anymail_id": target.message_id,
            "category": ["digest", "issue-48"],
            **target.metadata,
        }
        event.update(
            {
                "delivered": {"event": "delivered", "response": "250 OK", "tls": 1},
                "hard_bounce": {
                    "event": "bounce",
                    "type": "bounce",
                    "status": "5.1.1",
                    "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
                    "bounce_classification": "Invalid Address",
                },
                "soft_bounce": {
                    "event": "bounce",
                    "type": "blocked",
                    "status": "4.2.2",
                    "reason": "452 4.2.2 The email account that you tried to reach is over quota.",
                    "bounce_classification": "Mailbox Unavailable",
                },
                "complaint": {"event": "spamreport"},
                "open": {
                    "event": "open",
                    "useragent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
                    "ip": "255.255.255.255",
                    "sg_machine_open": False,
                },
                "click": {
                    "event": "click",
                    "url": ARTICLE_URL,
                    "url_offset": {"index": 0, "type": "html"},
                    "useragent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
                    "ip": "255.255.255.255",
                },
                "unsubscribe": {"event": "unsubscribe"},
            }[kind]
        )
        return compact([event])

    def headers(self, body: str) -> dict[str, str]:
        timestamp = str(epoch())
        signature = PRIVATE_KEY.sign((timestamp + body).encode(), ec.ECDSA(hashes.SHA256()))
        return {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        }


class TestSendGridWebhook(WebhookContract):
    fmt = SendGridFormat()

    def test_it_refuses_a_body_that_does_not_match_sendgrids_signature(self, client, run_on_commit):
        delivery = self.delivery()
        body = self.fmt.body("complaint", Target.of(delivery), event_id="tampered")
        signed_for_other_body = self.fmt.headers(body.replace("spamreport", "open"))
        with run_on_commit():
            response = post(client, self.fmt, body, headers=signed_for_other_body)
        assert response.status_code == 400
        delivery.subscriber.refresh_from_db()
        assert delivery.subscriber.status == "active"

    def test_it_takes_a_batch_of_events_in_one_post(self, client, run_on_commit):
        first, second = self.delivery(1), self.delivery(2)
        events = [
            self.fmt.body("open", Target.of(first), event_id="b1")[1:-1],
            self.fmt.body("hard_bounce", Target.of(second), event_id="b2")[1:-1],
        ]
        with run_on_commit():
            assert post(client, self.fmt, f"[{','.join(events)}]").status_code == 200
        first.refresh_from_db()
        second.subscriber.refresh_from_db()
        assert (first.open_count, second.subscriber.status) == (1, "bounced")
