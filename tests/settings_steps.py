"""Steps shared by the settings tests: start Django in a fresh process with a given environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run `code` in a new Python process whose settings come from `env` alone (the
    caller's own DATABASE_URL, REDIS_*, ANYMAIL_* and the like are left out)."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            (
                "DATABASE_URL",
                "REDIS_",
                "ANYMAIL_",
                "EMAIL_",
                "DEBUG",
                "SECRET_KEY",
                "SITE_URL",
                "ALLOWED_HOSTS",
                "CELERY_",
            )
        )
    }
    clean.update(
        env, DJANGO_SETTINGS_MODULE="config.settings", VAR_DIR=str(ROOT / "var" / "test-settings")
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def load(**env: str) -> subprocess.CompletedProcess:
    """Start Django with `env`; print its database engine, cache, email backend and eagerness."""
    return run(
        "import django; django.setup(); from django.conf import settings; print(settings.DATABASES['default']['ENGINE'], settings.CACHES['default']['BACKEND'], settings.EMAIL_BACKEND, settings.CELERY_TASK_ALWAYS_EAGER)",
        **env,
    )
