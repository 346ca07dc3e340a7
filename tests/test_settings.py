"""Settings come from the environment and a bad value stops start-up with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.settings_steps import ROOT, load, run

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "x" * 20 + "y" * 20 + "z" * 20 + "0123456789abcdef",
    "SITE_URL": "https://weekly.example.org",
    "ALLOWED_HOSTS": "weekly.example.org",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "EMAIL_BACKEND": "anymail.backends.mailgun.EmailBackend",
    "ANYMAIL_MAILGUN_API_KEY": "key-test",
    "ANYMAIL_MAILGUN_SENDER_DOMAIN": "mg.example.org",
}


def test_it_runs_embedded_with_no_environment():
    result = load()
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "django.core.cache.backends.locmem.LocMemCache",
        "newsletter.backends.OutboxBackend",
        "True",
    ]


def test_it_uses_postgres_redis_and_workers_in_production():
    result = load(**PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.postgresql",
        "django.core.cache.backends.redis.RedisCache",
        "anymail.backends.mailgun.EmailBackend",
        "False",
    ]


def test_it_puts_the_cache_in_its_own_redis_database():
    result = run(
        "import django; django.setup(); from django.conf import settings; print(settings.CACHES['default']['LOCATION'], settings.CELERY_BROKER_URL)",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    assert result.stdout.split() == ["redis://127.0.0.1:6379/1", "redis://127.0.0.1:6379/0"]


def test_sending_notices_lost_work_within_a_minute_and_waits_out_rate_limits_for_a_day():
    result = run(
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.CELERY_BEAT_SCHEDULE['reclaim-expired-leases']['schedule'], "
        "s.NEWSLETTER_WATCH_SECONDS, s.NEWSLETTER_LEASE_SECONDS, "
        "s.NEWSLETTER_DISPATCH_GRACE_SECONDS, s.NEWSLETTER_MAX_ATTEMPTS, "
        "s.NEWSLETTER_GIVE_UP_AFTER, s.NEWSLETTER_ESP_BATCH_LIMIT)",
        **PRODUCTION,
    )
    assert result.returncode == 0, result.stderr
    watchdog, tick, lease, grace, attempts, give_up, batch_limit = result.stdout.split()
    assert (watchdog, tick) == ("30.0", "30")  # beat's watchdog, every 30 s
    assert (lease, grace) == ("60", "60")  # a dead worker's rows, a lost range: a minute
    assert (attempts, give_up) == ("5", "86400")  # rate limits are waited out for 24 h
    assert batch_limit == "0"  # the ESP's own limit per call


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"DATABASE_URL": "mysql://root@localhost/db"}, "DATABASE_URL must point to PostgreSQL"),
        ({"DATABASE_URL": "nonsense"}, "DATABASE_URL is not a database URL"),
        (
            {"REDIS_URL": "http://127.0.0.1:6379"},
            "REDIS_URL='http://127.0.0.1:6379' is not a valid URL",
        ),
        ({"SITE_URL": "weekly.example.org"}, "SITE_URL='weekly.example.org' is not a valid URL"),
        ({"EMAIL_PORT": "smtp"}, "EMAIL_PORT='smtp' is not a whole number"),
        ({"NEWSLETTER_BATCH_SIZE": "0"}, "NEWSLETTER_BATCH_SIZE=0 is too small"),
        ({"DEBUG": "false", "SITE_URL": "https://w.example.org"}, "SECRET_KEY is not set"),
        (
            {**PRODUCTION, "SITE_URL": "http://weekly.example.org"},
            "SITE_URL='http://weekly.example.org' is not a valid URL: it must be absolute, start with https://",
        ),
        ({**PRODUCTION, "SECRET_KEY": "short"}, "SECRET_KEY is too weak"),
        (
            {"EMAIL_BACKEND": "anymail.backends.mailgun.EmailBackend"},
            "needs the ESP's credentials in ANYMAIL_* variables",
        ),
        (
            {"CELERY_VISIBILITY_TIMEOUT": "60"},
            "CELERY_VISIBILITY_TIMEOUT (60) must be longer than NEWSLETTER_LEASE_SECONDS (60)",
        ),
        ({"NEWSLETTER_GIVE_UP_AFTER": "10"}, "NEWSLETTER_GIVE_UP_AFTER=10 is too small"),
        ({"NEWSLETTER_GIVE_UP_AFTER": "1d"}, "NEWSLETTER_GIVE_UP_AFTER='1d' is not a whole number"),
        ({"NEWSLETTER_WATCH_SECONDS": "0"}, "NEWSLETTER_WATCH_SECONDS=0 is too small"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD' must be one of"),
    ],
)
def test_it_refuses_a_bad_value_naming_the_variable(env, message):
    result = load(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_production_settings_pass_check_deploy():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_"))},
            **PRODUCTION,
            "VAR_DIR": str(ROOT / "var" / "test-settings"),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
