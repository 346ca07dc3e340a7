"""Staff logins are throttled (django-axes): per username and per IP, with a message and an unlock."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User

from tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"
PASSWORD = "correct horse battery staple"


def _try(client, username: str, password: str, ip: str = "203.0.113.5"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_it_locks_a_username_out_after_repeated_failures_even_with_the_right_password(
    client, settings
):
    settings.AXES_FAILURE_LIMIT = 3
    StaffUserFactory(username="li.wei")
    for n in range(2):  # from different networks: the username is what counts
        assert _try(client, "li.wei", "guess", ip=f"198.51.100.{n}").status_code == 200
    assert _try(client, "li.wei", "guess", ip="198.51.100.3").status_code == 429
    response = _try(client, "li.wei", PASSWORD, ip="192.0.2.77")
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed sign-ins" in page
    assert "ask an administrator" in page
    assert "_auth_user_id" not in client.session


def test_it_locks_an_ip_out_that_guesses_many_usernames(client, settings):
    settings.AXES_FAILURE_LIMIT = 3
    StaffUserFactory(username="zhang.min")
    for name in ("a", "b", "c"):
        _try(client, name, "guess", ip="198.51.100.9")
    assert _try(client, "zhang.min", PASSWORD, ip="198.51.100.9").status_code == 429
    # Another network may still sign in as that user.
    response = _try(client, "zhang.min", PASSWORD, ip="192.0.2.10")
    assert response.status_code == 302


def test_an_admin_unlocks_by_deleting_the_access_attempts(client, settings):
    settings.AXES_FAILURE_LIMIT = 2
    StaffUserFactory(username="chen.yu")
    for _ in range(2):
        _try(client, "chen.yu", "guess")
    assert _try(client, "chen.yu", PASSWORD).status_code == 429

    admin = User.objects.create_superuser("boss", "boss@newsroom.example.org", "boss-pass-123")
    other = client.__class__()
    other.force_login(admin)
    listing = other.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and "chen.yu" in listing.content.decode()
    ids = [str(pk) for pk in AccessAttempt.objects.values_list("pk", flat=True)]
    other.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    assert not AccessAttempt.objects.exists()
    assert _try(client, "chen.yu", PASSWORD).status_code == 302
