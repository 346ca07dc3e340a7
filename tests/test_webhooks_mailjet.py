"""Mailjet's event webhook, with events as Mailjet posts them (JSON, grouped or single).

Format: https://dev.mailjet.com/email/guides/webhooks/ (event sent, bounce with
hard_bounce true or false, spam, open, click, unsub; our metadata comes back in
Payload as a JSON string). Mailjet has no signature and no event id: the basic-auth
secret is the credential, and a retried event is recognised by its content.
"""

from __future__ import annotations

import json

from tests.webhook_steps import (
    ARTICLE_URL,
    EspFormat,
    Target,
    WebhookContract,
    compact,
    epoch,
)


class MailjetFormat(EspFormat):
    esp = "mailjet"

    def message_id(self, n: int) -> str:
        return str(1152921510000000000 + n)

    def body(self, kind: str, target: Target, *, event_id: str) -> str:
        common = {
            "time": epoch(),
            "MessageID": int(target.message_id),
            "Message_GUID": f"1ab23cd4-e567-8901-2345-6789f0gh1i2j-{event_id}",
            "email": target.email,
            "mj_campaign_id": 7257,
            "mj_contact_id": 4,
            "customcampaign": "issue-48",
            "CustomID": "",
            "Payload": json.dumps(target.metadata),
        }
        fields = {
            "delivered": {
                "event": "sent",
                "smtp_reply": "sent (250 2.0.0 OK 1433333948 fa5si855896wjc.199 - gsmtp)",
            },
            "hard_bounce": {
                "event": "bounce",
                "blocked": False,
                "hard_bounce": True,
                "error_related_to": "recipient",
                "error": "user unknown",
                "comment": "Host or domain name not found. Name service error for name=lbjsnrftlsiuvbsren.com type=A: Host not found",
            },
            "soft_bounce": {
                "event": "bounce",
                "blocked": False,
                "hard_bounce": False,
                "error_related_to": "recipient",
                "error": "quota exceeded",
                "comment": "452 4.2.2 Mailbox full",
            },
            "complaint": {"event": "spam", "source": "JMRPP"},
            "open": {"event": "open", "ip": "127.0.0.1", "geo": "CN", "agent": "Mozilla/5.0"},
            "click": {
                "event": "click",
                "url": ARTICLE_URL,
                "ip": "127.0.0.1",
                "geo": "CN",
                "agent": "Mozilla/5.0",
            },
            "unsubscribe": {
                "event": "unsub",
                "mj_list_id": 1,
                "ip": "127.0.0.1",
                "geo": "CN",
                "agent": "Mozilla/5.0",
            },
        }[kind]
        return compact([{**common, **fields}])


class TestMailjetWebhook(WebhookContract):
    fmt = MailjetFormat()
