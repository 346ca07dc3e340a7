"""/healthz tells a load balancer whether the database, cache and broker answer."""

import pytest


@pytest.mark.django_db
def test_it_answers_200_when_everything_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["cache"] == "ok"
    assert body["broker"] in ("ok", "embedded")


def _with_the_cache_down(client, settings, **request):
    """GET /healthz while the cache points at a port nothing listens on."""
    # Changing CACHES makes Django's test signals drop the cache connections, so the
    # view's `cache` reaches the new location (and the old one again at teardown).
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    return client.get("/healthz", **request)


@pytest.mark.django_db
def test_it_answers_503_when_the_cache_is_down(client, settings):
    response = _with_the_cache_down(client, settings)
    assert response.status_code == 503
    assert response.json()["cache"].startswith("error")


PUBLIC = {"REMOTE_ADDR": "203.0.113.9"}


@pytest.mark.django_db
def test_the_public_gets_only_the_verdict(client):
    response = client.get("/healthz", **PUBLIC)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content == b"ok"


@pytest.mark.django_db
def test_the_public_gets_503_and_no_detail_when_a_service_is_down(client, settings):
    response = _with_the_cache_down(client, settings, HTTP_X_FORWARDED_FOR="127.0.0.1", **PUBLIC)
    assert response.status_code == 503
    assert response.content == b"error"  # a written X-Forwarded-For is no loopback


@pytest.mark.django_db
def test_staff_get_each_check_from_anywhere(client, django_user_model):
    staff = django_user_model.objects.create_user("ops", password="x-long-pass-1", is_staff=True)
    client.force_login(staff)
    response = client.get("/healthz", **PUBLIC)
    assert response.status_code == 200
    assert response.json()["database"] == "ok"
