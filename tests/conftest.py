"""Test set-up shared by every test.

Two runs, same tests: the embedded defaults (SQLite, eager Celery, local-memory
cache) and real services (DATABASE_URL on PostgreSQL, REDIS_URL on Redis). Tests
marked `services` need the second: they skip in the embedded run, and with CI=true
a configured service that does not answer fails them instead of skipping.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.cache import cache

from config.catalogues import catalogues_compile
from config.celery import app as celery_app
from newsletter.sending.ratelimit import send_rate_reset

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# The public address of the site in tests that read links in emails and pages.
SITE = "https://weekly.example.org"
# When `sent_issue` went out: Friday 27 November 2026, 17:00 in Shanghai.
SENT_AT = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

# The translation catalogues are build output (Babel, no GNU gettext): compile any that
# changed, so a bare `pytest` sees the same pages and emails as `make test` (issue 14).
catalogues_compile(locale_dirs=settings.LOCALE_PATHS)


def _answers(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2
        ):
            return True
    except OSError:
        return False


def services_problem() -> str | None:
    """Return why real PostgreSQL and Redis are not available, or None when they are."""
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        return "needs DATABASE_URL on PostgreSQL (the embedded run uses SQLite)"
    if not settings.REDIS_URL:
        return "needs REDIS_URL (the embedded run has no broker)"
    db = settings.DATABASES["default"]
    if not _answers(f"postgres://{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}", 5432):
        return "PostgreSQL does not answer"
    if not _answers(settings.REDIS_URL, 6379):
        return "Redis does not answer"
    return None


@pytest.fixture(autouse=True)
def _services_guard(request):
    """Skip a `services` test in the embedded run; fail it in CI when a service is down."""
    if "services" not in request.keywords:
        return
    problem = services_problem()
    if problem is None:
        return
    configured = bool(settings.REDIS_URL) and settings.DATABASES["default"]["ENGINE"].endswith(
        "postgresql"
    )
    if IN_CI and configured:
        pytest.fail(f"CI=true and {problem}")
    pytest.skip(problem)


@pytest.fixture(autouse=True)
def _isolated(request, settings, tmp_path):
    """Run tasks in process and start each test with an empty cache and outbox dir."""
    settings.EMAIL_OUTBOX_DIR = tmp_path / "outbox"
    settings.MEDIA_ROOT = tmp_path / "media"  # attachments readers upload
    eager = "services" not in request.keywords
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = eager
    cache.clear()  # on Redis, this also drops the shared send rate's pause and schedule
    send_rate_reset()
    if request.node.get_closest_marker("django_db"):
        # A transactional test flushes the tables, data migration rows included;
        # put the newsletter back so every test starts from what migrate leaves.
        from tests.factories import default_newsletter

        default_newsletter()
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def empty_broker_queue(settings):
    """Start from an empty broker queue. The send watchdog counts the queue, and a task
    an earlier test left on the real Redis broker would look like a busy backlog."""
    if settings.REDIS_URL:
        celery_app.control.purge()


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Return a context manager that runs on_commit callbacks (task enqueues) at its end."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def site(settings) -> str:
    """Serve and link the site as SITE (emails carry absolute links)."""
    settings.SITE_URL = SITE
    settings.ALLOWED_HOSTS = ["weekly.example.org", "testserver"]
    return SITE


@pytest.fixture
def finance():
    from tests.factories import CategoryFactory

    return CategoryFactory(name="Finance", position=1)


@pytest.fixture
def energy():
    from tests.factories import CategoryFactory

    return CategoryFactory(name="Energy", position=2)


@pytest.fixture
def issue(finance, energy):
    """Draft No. 7: Finance ("ICBC and Alipay", the lead) and Energy (a title in two scripts).

    An issue of another shape gets a name that says so (`sent_issue`, `issue_no_5`, ...),
    so `issue` means this one in every test.
    """
    from tests.factories import ArticleFactory, IssueFactory, IssueItemFactory

    issue = IssueFactory(number=7, week="2026-W48")
    IssueItemFactory(
        issue=issue,
        article=ArticleFactory(
            title="ICBC and Alipay", category=finance, abstract="Banks & apps <together>."
        ),
    )
    IssueItemFactory(
        issue=issue,
        article=ArticleFactory(title="Solar in Uzbekistan · 乌兹别克斯坦", category=energy),
    )
    return issue


@pytest.fixture
def sent_issue():
    """No. 48, sent at SENT_AT, with no Delivery rows yet: a test adds the ones it needs."""
    from newsletter.models import Issue
    from tests.factories import IssueFactory

    return IssueFactory(
        number=48, status=Issue.Status.SENT, send_started_at=SENT_AT, sent_at=SENT_AT
    )
