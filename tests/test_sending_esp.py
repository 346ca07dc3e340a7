"""The ESP batch path: anymail's real Mailgun backend over HTTP to the local stand-in."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from newsletter.models import Delivery, Issue, Subscriber
from newsletter.sending.batch import delivery_batch_send
from newsletter.sending.ways_out.esp import BATCH_PROFILES, batch_profile
from standins.esp import EspStandin
from tests.factories import SubscriberFactory
from tests.sending_steps import send_in_one_batch, snapshot

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("site")]


@pytest.fixture(
    params=["anymail.backends.mailgun.EmailBackend", "newsletter.sending.mailgun.EmailBackend"]
)
def esp(settings, request):
    """The Mailgun stand-in, behind anymail's backend and behind ours (body encoded once)."""
    with EspStandin() as standin:
        settings.EMAIL_BACKEND = request.param
        settings.ANYMAIL = {"MAILGUN_API_KEY": standin.api_key, "MAILGUN_API_URL": standin.api_url}
        yield standin


def test_it_sends_a_whole_variant_in_one_api_call_with_each_readers_own_links(esp, issue):
    readers = SubscriberFactory.create_batch(5)
    result = send_in_one_batch(issue)
    assert len(esp.calls) == 1 and len(esp.calls[0].recipients) == 5
    assert result.sent == 5 and result.variants == 1
    links = set()
    for reader in readers:
        (copy,) = esp.received_by(reader.email)
        unsubscribe = re.fullmatch(
            r"<(https://weekly\.example\.org/newsletter/unsubscribe/[^>]+/)>",
            copy.headers["List-Unsubscribe"],
        )
        assert unsubscribe, copy.headers
        assert unsubscribe.group(1) in copy.text and unsubscribe.group(1) in copy.html
        assert "%recipient" not in copy.html and "%%" not in copy.text
        assert copy.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        delivery = Delivery.objects.get(subscriber=reader)
        assert copy.variables == {
            "issue": str(issue.pk),
            "subscriber": str(reader.pk),
            "delivery": str(delivery.pk),
        }
        assert delivery.status == "sent" and delivery.esp_message_id == copy.message_id
        links.add(unsubscribe.group(1))
    assert len(links) == 5


def test_the_link_in_the_batch_copy_unsubscribes_that_reader(esp, issue, client):
    reader = SubscriberFactory()
    send_in_one_batch(issue)
    (copy,) = esp.received_by(reader.email)
    path = urlsplit(copy.headers["List-Unsubscribe"].strip("<>")).path
    response = client.post(
        path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    assert Subscriber.objects.get(pk=reader.pk).status == Subscriber.Status.UNSUBSCRIBED


def test_each_variant_is_one_call_with_only_its_sections(esp, issue, energy):
    energy_only = SubscriberFactory.create_batch(2)
    for reader in energy_only:
        reader.categories.set([energy])
    everything = SubscriberFactory.create_batch(3)
    send_in_one_batch(issue)
    assert sorted(len(call.recipients) for call in esp.calls) == [2, 3]
    for reader in energy_only:
        (copy,) = esp.received_by(reader.email)
        assert "Solar in Uzbekistan" in copy.text and "ICBC and Alipay" not in copy.text
    for reader in everything:
        (copy,) = esp.received_by(reader.email)
        assert "ICBC and Alipay" in copy.text


def test_calls_never_exceed_the_esps_per_call_limit(esp, issue, settings):
    settings.NEWSLETTER_ESP_BATCH_LIMIT = 4
    SubscriberFactory.create_batch(10)
    result = send_in_one_batch(issue)
    assert [len(call.recipients) for call in esp.calls] == [4, 4, 2]
    assert result.sent == 10 and esp.total == 10


def test_a_refused_address_fails_alone_and_the_rest_are_sent(esp, issue):
    readers = SubscriberFactory.create_batch(8)
    esp.refuse(readers[5].email)
    result = send_in_one_batch(issue)
    assert (result.sent, result.failed) == (7, 1)
    bad = Delivery.objects.get(subscriber=readers[5])
    assert bad.status == "failed" and "not a valid address" in bad.last_error
    assert esp.received_by(readers[5].email) == []
    assert all(esp.received_count[r.email.lower()] == 1 for r in readers if r != readers[5])
    issue.refresh_from_db()
    assert (issue.sent_count, issue.failed_count, issue.status) == (7, 1, "sent")


def test_an_esp_500_puts_the_rows_back_for_a_retry_and_the_retry_sends_them(esp, issue):
    SubscriberFactory.create_batch(3)
    esp.fail_next(1, status=500)
    first = send_in_one_batch(issue)
    assert (first.sent, first.requeued) == (0, 3) and first.retry_in is not None
    assert set(Delivery.objects.values_list("status", flat=True)) == {"queued"}
    assert "500" in Delivery.objects.first().last_error
    ids = list(Delivery.objects.values_list("id", flat=True))
    second = delivery_batch_send(issue_id=issue.pk, first_id=min(ids), last_id=max(ids))
    assert second.sent == 3 and esp.total == 3
    assert Issue.objects.get(pk=issue.pk).status == "sent"


def test_queries_per_batch_do_not_grow_with_the_batch(esp, issue, energy):
    def queries_for(n: int) -> int:
        Delivery.objects.all().delete()
        Subscriber.objects.all().delete()
        Issue.objects.filter(pk=issue.pk).update(status="sending")
        readers = SubscriberFactory.create_batch(n)
        for reader in readers[: n // 2]:
            reader.categories.set([energy])
        with CaptureQueriesContext(connection) as queries:
            send_in_one_batch(issue)
        return len(queries)

    assert queries_for(4) == queries_for(40)


def _backend(path: str):
    from django.core.mail import get_connection

    extra = {"secret_key": "s"} if "mailjet" in path else {}
    return get_connection(path, api_key="k", **extra)


@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")
def test_the_batch_path_is_chosen_for_the_esps_that_support_it():
    from django.core.mail import get_connection

    for path in BATCH_PROFILES:
        backend = _backend(path)
        assert batch_profile(backend) is not None, path
    assert (
        batch_profile(get_connection("anymail.backends.postmark.EmailBackend", server_token="t"))
        is None
    )
    assert batch_profile(get_connection("django.core.mail.backends.smtp.EmailBackend")) is None


@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")
@pytest.mark.parametrize("path", sorted(BATCH_PROFILES))
def test_anymail_builds_a_batch_payload_for_each_supported_esp(path, issue):
    """Each profile's message is one anymail accepts: inline content, merge data and headers."""
    from newsletter.digest import digest_build, digest_render
    from newsletter.links import UNSUBSCRIBE_URL, ReaderLinks
    from newsletter.sending.messages import BatchRecipient, digest_batch_message

    backend = _backend(path)
    profile = batch_profile(backend)
    readers = SubscriberFactory.create_batch(2)
    links = ReaderLinks()
    digest = digest_build(issue)
    message = digest_batch_message(
        profile.with_fields(digest_render(digest, digest.section_keys), links.around),
        issue=issue,
        recipients=[
            BatchRecipient(i, r, links.tokens(r), links(r)[UNSUBSCRIBE_URL])
            for i, r in enumerate(readers)
        ],
        merge_key=profile.merge_keys(),
        esp_extra=profile.esp_extra,
        max_tags=profile.max_tags,
    )
    payload = backend.build_message_payload(message, backend.send_defaults)
    body = str(payload.serialize_data())
    assert readers[0].email in body and readers[1].email in body
    assert "unsubscribe" in body


def test_each_language_of_a_variant_is_its_own_call_in_its_own_language(esp, issue):
    """Issue 14: variants are language x sections; the From name is the edition's."""
    from tests.language_steps import chinese_version

    for item in issue.items.select_related("article"):
        chinese_version(item.article, title=f"中文版：{item.article.title}")
    english = SubscriberFactory.create_batch(3, language="en")
    chinese = SubscriberFactory.create_batch(2, language="zh-hans")
    result = send_in_one_batch(issue)
    assert result.variants == 2 and result.sent == 5
    assert sorted(len(call.recipients) for call in esp.calls) == [2, 3]
    (copy,) = esp.received_by(chinese[0].email)
    assert "中文版：ICBC and Alipay" in copy.html and 'lang="zh-hans"' in copy.html
    (call,) = [c for c in esp.calls if chinese[0].email in c.recipients]
    from email.header import decode_header, make_header

    assert str(make_header(decode_header(call.fields["from"][0]))) == (
        "一带一路周刊 <weekly@news.example.org>"
    )
    (copy,) = esp.received_by(english[0].email)
    assert "中文版" not in copy.html and "ICBC and Alipay" in copy.html


def test_the_form_encoded_once_is_byte_for_byte_what_requests_would_post():
    import requests

    from newsletter.sending.mailgun import form_encode

    html = "<p>Gwadar &amp; Piraeus: 港口 «ports» 100% 🚢</p>" * 200
    data = {
        "from": ["Belt & Road Weekly <weekly@example.org>"],
        "to": ["a+b@example.org", "Wáng <wang@example.cn>"],
        "subject": "No. 48: ports, power & payments",
        "html": html,
        "text": "%recipient.unsubscribe_token% = 1+1",
        "o:tag": ["issue-48", "digest"],
        "v:issue": 48,
    }
    expected = requests.Request("POST", "https://api.mailgun.net/v3/messages", data=data)
    expected = expected.prepare().body.encode()
    assert form_encode(data) == expected
    assert form_encode(data) == expected  # the second call, from the remembered encoding


def test_a_worker_remembers_each_variants_bodies_but_not_each_calls_recipients():
    # Every call of a batch carries its own recipient-variables (about a megabyte for
    # 1,000 readers); remembering them grew a worker's memory with every batch.
    import json

    from newsletter.sending.mailgun import body_encoded, form_encode

    body_encoded.cache_clear()
    html, text = "<p>港口 «ports»</p>" * 500, "Ports & power " * 500
    for call in range(40):
        readers = {
            f"reader{call}-{n}@example.org": {"unsubscribe_token": "t" * 40} for n in range(100)
        }
        form_encode({"html": html, "text": text, "recipient-variables": json.dumps(readers)})
    assert body_encoded.cache_info().currsize == 2  # the html and the text, once each


def test_readers_of_one_variant_share_batches_so_each_call_carries_a_whole_batch(
    esp, issue, energy
):
    # Sign-ups alternate between two choices; the snapshot groups them by variant.
    for n in range(8):
        reader = SubscriberFactory()
        if n % 2:
            reader.categories.set([energy])
    snapshot(issue)
    ids = list(Delivery.objects.filter(issue=issue).order_by("id").values_list("id", flat=True))
    for first, last in ((ids[0], ids[3]), (ids[4], ids[7])):  # two batches of 4
        delivery_batch_send(issue_id=issue.pk, first_id=first, last_id=last)
    assert [len(call.recipients) for call in esp.calls] == [4, 4]
    assert esp.total == 8


@pytest.mark.parametrize(
    "to",
    [
        ["reader1@example.com", "o'brien+weekly@post.example.org"],
        ["Wáng Wěi <wang@example.cn>", "reader2@example.com"],  # a name: anymail parses it
        ["李@例子.中国"],  # non-ASCII: anymail parses it
    ],
)
def test_our_mailgun_payload_posts_what_anymails_posts(to):
    from anymail.backends.mailgun import EmailBackend as Anymail
    from anymail.message import AnymailMessage

    from newsletter.sending.mailgun import EmailBackend as Ours
    from newsletter.sending.mailgun import form_encode

    def posted(backend_class) -> bytes:
        backend = backend_class(api_key="key", sender_domain="mg.example.org")
        message = AnymailMessage(
            subject="No. 48", body="text", from_email="weekly@mg.example.org", to=to
        )
        message.attach_alternative("<p>html</p>" * 500, "text/html")
        message.merge_data = {address: {"token": str(n)} for n, address in enumerate(to)}
        payload = backend.build_message_payload(message, backend.send_defaults)
        data = payload.get_request_params(backend.api_url)["data"]
        return data if isinstance(data, bytes) else form_encode(data)

    try:
        expected = posted(Anymail)
    except Exception as error:  # anymail refuses it: so must we, the same way
        with pytest.raises(type(error)):
            posted(Ours)
        return
    assert posted(Ours) == expected
