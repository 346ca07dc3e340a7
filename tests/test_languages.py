"""Languages are settings: the list comes from the environment and catalogues ship complete (issue 14)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.conf import settings
from django.core import mail
from django.test import Client, override_settings
from django.utils.translation import trans_real

from config.catalogues import CatalogueError, catalogues_compile
from newsletter.services.issues import issue_start_sending
from tests.factories import ArticleFactory, IssueFactory, IssueItemFactory, SubscriberFactory
from tests.settings_steps import run

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = {
    "en": ROOT / "locale/en/LC_MESSAGES/django.po",
    "zh-hans": ROOT / "locale/zh_Hans/LC_MESSAGES/django.po",
}


def test_languages_come_from_the_environment():
    result = run(
        "from django.conf import settings; print(settings.LANGUAGES, settings.LANGUAGE_CODE)",
        NEWSLETTER_LANGUAGES="zh-hans,en,ru",
    )
    assert result.returncode == 0, result.stderr
    assert (
        "[('zh-hans', '简体中文'), ('en', 'English'), ('ru', 'Русский')] zh-hans" in result.stdout
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("en,klingon", "unknown language code(s) klingon"),
        ("en,en", "names a language twice"),
    ],
)
def test_a_bad_language_list_stops_start_up_with_a_clear_message(value, message):
    result = run("import django; django.setup()", NEWSLETTER_LANGUAGES=value)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


@pytest.mark.parametrize("language", sorted(SHIPPED))
def test_every_shipped_catalogue_translates_every_string(language):
    with SHIPPED[language].open("rb") as handle:
        catalogue = read_po(handle)
    untranslated = [
        message.id
        for message in catalogue
        if message.id
        and (message.fuzzy or not all(message.string if message.pluralizable else [message.string]))
    ]
    assert untranslated == []
    assert len(catalogue) > 600


def test_catalogues_compile_without_gnu_gettext(tmp_path):
    """`make test`/`make demo` compile with Babel from the venv: no msgfmt on the PATH."""
    shutil.copytree(ROOT / "locale", tmp_path / "locale", ignore=shutil.ignore_patterns("*.mo"))
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # the venv only
    assert shutil.which("msgfmt", path=env["PATH"]) is None
    code = (
        "from pathlib import Path; from config.catalogues import catalogues_compile;"
        f"print(len(catalogues_compile(locale_dirs=[Path({str(tmp_path / 'locale')!r})])))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.stdout.strip() == "2", result.stderr
    assert (tmp_path / "locale/zh_Hans/LC_MESSAGES/django.mo").stat().st_size > 10_000


def test_a_broken_translation_is_refused_with_its_line(tmp_path):
    po = tmp_path / "xx/LC_MESSAGES/django.po"
    po.parent.mkdir(parents=True)
    po.write_text(
        'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        '#, python-format\nmsgid "Welcome to %(name)s"\nmsgstr "欢迎订阅%(nom)s"\n',
        encoding="utf-8",
    )
    with pytest.raises(CatalogueError, match=r"django.po:\d+: .*nom"):
        catalogues_compile(locale_dirs=[tmp_path])
    assert not po.with_suffix(".mo").exists()


def _forget_languages() -> None:
    for name in ("get_languages", "translation_catalog_exists", "_get_supported_language_variant"):
        cached = getattr(trans_real, name, None)
        if cached is not None and hasattr(cached, "cache_clear"):
            cached.cache_clear()


@pytest.fixture
def russian(tmp_path):
    """Russian added the way an operator would: the setting and a catalogue, no code."""
    shutil.copytree(ROOT / "tests/locale", tmp_path / "locale")
    catalogues_compile(locale_dirs=[tmp_path / "locale"])
    with override_settings(
        LANGUAGES=[*settings.LANGUAGES, ("ru", "Русский")],
        LOCALE_PATHS=[*settings.LOCALE_PATHS, tmp_path / "locale"],
    ):
        # Django caches which languages exist for the life of a process; a deployment
        # with the new setting starts a new process, with empty caches.
        _forget_languages()
        yield
    _forget_languages()


@pytest.mark.django_db
def test_a_third_language_takes_a_setting_and_a_catalogue(russian, run_on_commit):
    page = Client().get("/ru/newsletter/subscribe/").content.decode()
    assert '<html lang="ru">' in page
    assert "Подписка на Еженедельник «Пояс и путь»" in page
    assert 'value="ru"' in page and "Язык рассылки" in page
    assert 'hreflang="ru"' in Client().get("/newsletter/archive/").content.decode()
    redirect = Client().get("/newsletter/subscribe/", HTTP_ACCEPT_LANGUAGE="ru,en;q=0.5")
    assert redirect["Location"] == "/ru/newsletter/subscribe/"
    issue = IssueFactory(number=5)
    IssueItemFactory(issue=issue, article=ArticleFactory(title="Rail freight record"))
    SubscriberFactory(email="ivan@example.ru", language="ru")
    with run_on_commit():
        issue_start_sending(issue=issue)
    [email] = mail.outbox
    assert email.subject == "Rail freight record · Еженедельник «Пояс и путь» № 5"
    assert "Читать полностью" in email.alternatives[0][0]
    assert settings.LANGUAGE_CODE == "en"
