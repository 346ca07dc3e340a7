"""Steps shared by the reader tests: a valid signup POST, links out of emails."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.test import Client, TestCase
from django.utils import timezone

from newsletter.abuse import form_stamp
from newsletter.selectors.subscribers import consent_text_current
from tests.factories import default_newsletter

SUBSCRIBE = "/newsletter/subscribe/"


class CommitClient(Client):
    """A test client whose requests run their on-commit callbacks, as a real request's would.

    Tests run inside a transaction that never commits, so without this the emails a
    request queues on commit would never be sent; callbacks of a rolled-back block
    are still dropped, as in production.
    """

    def request(self, **request):
        with TestCase.captureOnCommitCallbacks(execute=True):
            return super().request(**request)


@pytest.fixture
def client() -> CommitClient:
    return CommitClient()


@pytest.fixture
def admin_client(django_user_model) -> CommitClient:
    """A logged-in superuser whose admin actions send their emails, as in production."""
    user = django_user_model.objects.create_superuser("editor", "editor@example.com", "pw")
    client = CommitClient()
    client.force_login(user)
    return client


URL = re.compile(r"https?://[^\s<>\"']+")


def aged_stamp(seconds: int = 30) -> str:
    """Return a form stamp issued `seconds` ago, as if a person had taken that long."""
    with time_machine.travel(timezone.now() - timedelta(seconds=seconds), tick=False):
        return form_stamp()


def signup_data(**overrides) -> dict:
    """Return the POST body of a correctly filled subscription form."""
    consent = consent_text_current(newsletter=default_newsletter())
    data = {
        "email": "li.wei@example.com",
        "name": "Li Wei",
        "organisation": "Silk Road Bank",
        "country": "CN",
        "consent": "on",
        "consent_version": str(consent.version),
        "stamp": aged_stamp(),
        "website": "",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def sent_to(address: str) -> list[EmailMultiAlternatives]:
    return [message for message in mail.outbox if address in message.to]


def html_of(message: EmailMultiAlternatives) -> str:
    return next(content for content, kind in message.alternatives if kind == "text/html")


def links(message: EmailMultiAlternatives, path_part: str) -> list[str]:
    """Return the paths of the links in the text part that contain `path_part`."""
    return [urlsplit(url).path for url in URL.findall(message.body) if path_part in url]


def link(message: EmailMultiAlternatives, path_part: str) -> str:
    found = links(message, path_part)
    assert found, f"no {path_part} link in:\n{message.body}"
    return found[0]


_CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')


def without_csrf(content: bytes) -> bytes:
    """Return a page with its CSRF tokens blanked: they differ on every render."""
    return _CSRF.sub(b'name="csrfmiddlewaretoken" value=""', content)
