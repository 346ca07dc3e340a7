"""The per-message path over SMTP: one connection, MIME serialised once per variant."""

from __future__ import annotations

import email
import email.policy
import re

import pytest

from newsletter.models import Delivery
from newsletter.sending.batch import delivery_batch_send
from standins.smtp import SmtpSink
from tests.factories import SubscriberFactory
from tests.sending_steps import send_in_one_batch

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("site")]


@pytest.fixture
def sink(settings):
    with SmtpSink() as standin:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", standin.port
        yield standin


def parsed(sink, address):
    (raw,) = [content for rcpts, content in sink.messages if rcpts == [address]]
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_each_reader_gets_a_well_formed_copy_with_their_own_address_links_and_message_id(
    sink, issue, energy
):
    readers = SubscriberFactory.create_batch(4)
    picky = readers[0]
    picky.categories.set([energy])
    result = send_in_one_batch(issue)
    assert result.sent == 4 and sink.total == 4
    seen_ids, seen_links = set(), set()
    for reader in readers:
        message = parsed(sink, reader.email)
        assert message["To"] == reader.email
        unsubscribe = re.fullmatch(
            r"<(https://weekly\.example\.org/newsletter/unsubscribe/[^>]+/)>",
            message["List-Unsubscribe"],
        )
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert unsubscribe.group(1) in text and unsubscribe.group(1) in html
        assert (
            "%%" not in text and "%%" not in html and "recipient.invalid" not in message.as_string()
        )
        assert "Solar in Uzbekistan · 乌兹别克斯坦" in text
        # The default subject is the lead story of the reader's own email.
        lead = "Solar in Uzbekistan · 乌兹别克斯坦" if reader == picky else "ICBC and Alipay"
        # (a long non-ASCII subject is folded after "Subject:"; readers see no space)
        assert message["Subject"].strip() == f"{lead} · Belt & Road Weekly No. 7"
        delivery = Delivery.objects.get(subscriber=reader)
        assert delivery.esp_message_id == message["Message-ID"]
        seen_ids.add(message["Message-ID"])
        seen_links.add(unsubscribe.group(1))
    assert len(seen_ids) == 4 and len(seen_links) == 4
    assert "ICBC and Alipay" not in parsed(sink, picky.email).get_body(("plain",)).get_content()


def test_a_non_ascii_address_gets_a_message_built_the_ordinary_way(sink, issue):
    SubscriberFactory(email="leser@bücher.example")
    SubscriberFactory(email="plain@example.com")
    result = send_in_one_batch(issue)
    assert result.sent == 2
    assert sink.received_count["leser@xn--bcher-kva.example"] == 1
    assert sink.received_count["plain@example.com"] == 1


def test_a_refused_recipient_fails_alone_and_the_rest_are_sent(sink, issue):
    readers = SubscriberFactory.create_batch(3)
    sink.refuse(readers[1].email)
    result = send_in_one_batch(issue)
    assert (result.sent, result.failed) == (2, 1)
    assert "550" in Delivery.objects.get(subscriber=readers[1]).last_error


def test_an_smtp_4xx_puts_the_unsent_rows_back_for_a_retry(sink, issue):
    readers = SubscriberFactory.create_batch(3)
    sink.fail_next(1)
    result = send_in_one_batch(issue)
    assert (result.sent, result.requeued) == (0, 3) and result.retry_in
    assert "451" in Delivery.objects.first().last_error
    ids = [d.pk for d in Delivery.objects.all()]
    assert delivery_batch_send(issue_id=issue.pk, first_id=min(ids), last_id=max(ids)).sent == 3
    assert sorted(sink.received_count) == sorted(r.email for r in readers)
