"""Django settings for the peer: django-newsletter, in its own virtualenv (bench/.peer-venv).

Read by bench/peer/run.py only. Never imports this project: django-newsletter's
package is also called `newsletter`.
"""

import os
from urllib.parse import urlsplit

_db = urlsplit(os.environ["PEER_DATABASE_URL"])
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _db.path.lstrip("/"),
        "USER": _db.username or "postgres",
        "PASSWORD": _db.password or "",
        "HOST": _db.hostname or "127.0.0.1",
        "PORT": _db.port or 5432,
    }
}
SECRET_KEY = "peer-benchmark-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
SITE_ID = 1
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.sites",
    "sorl.thumbnail",
    "newsletter",
]
ROOT_URLCONF = "peer_urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [os.environ["PEER_TEMPLATES_DIR"]],
        "APP_DIRS": True,
        "OPTIONS": {},
    }
]
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = int(os.environ["PEER_SMTP_PORT"])
DEFAULT_FROM_EMAIL = "weekly@weekly.example.org"
STATIC_URL = "/static/"
MEDIA_URL = "/media/"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
NEWSLETTER_THUMBNAIL = "sorl-thumbnail"
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
