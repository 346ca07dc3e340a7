"""Language codes of articles and readers, matched to the languages in settings (issue 14)."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import get_supported_language_variant


def language_codes() -> list[str]:
    return [code for code, _name in settings.LANGUAGES]


def language_name(code: str) -> str:
    return dict(settings.LANGUAGES).get(code, code)


def language_match(code: str | None) -> str | None:
    """Return the configured language a feed's or browser's code means, or None.

    "zh-CN", "zh_Hans", "zh-hans-cn" and "zh" are all Simplified Chinese; Django's
    own fallbacks (LANG_INFO) decide, so a new language in settings needs no code here.
    """
    if not code:
        return None
    code = code.strip().replace("_", "-").lower()
    try:
        return get_supported_language_variant(code)
    except LookupError:
        return None


def reader_language(code: str | None) -> str:
    """Return the edition a reader with this stored language gets: theirs, or the default."""
    return language_match(code) or settings.LANGUAGE_CODE


def other_languages_field(*, label: str):
    """Return a form field choosing one of the languages other than the default.

    The default language's words live on the object itself (a category's name, an
    issue's note); rows for the other languages use this field.
    """
    from django import forms

    others = [(code, name) for code, name in settings.LANGUAGES if code != settings.LANGUAGE_CODE]
    return forms.ChoiceField(choices=others, label=label)
