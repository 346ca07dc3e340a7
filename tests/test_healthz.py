"""/healthz tells a load balancer whether the database, cache and broker answer."""

import pytest


@pytest.mark.django_db
def test_it_answers_200_when_everything_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["cache"] == "ok"
    assert body["broker"] in ("ok", "embedded")


@pytest.mark.django_db
def test_it_answers_503_when_the_cache_is_down(client, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    from django.core.cache import caches

    caches._settings = None
    try:
        response = client.get("/healthz")
    finally:
        caches._settings = None
    assert response.status_code == 503
    assert response.json()["cache"].startswith("error")
