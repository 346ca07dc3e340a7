"""Small typed readers for settings that come from the environment.

Each one fails at start-up with ImproperlyConfigured naming the variable and what
it expects, so a bad deployment stops at once instead of misbehaving later.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(name: str, default: str = "") -> str:
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a boolean: use one of true/false, 1/0, yes/no, on/off."
    )


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is too small: it must be at least {minimum}.")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is too small: it must be at least {minimum}.")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_url(name: str, default: str, *, schemes: tuple[str, ...]) -> str:
    """Return an absolute URL with one of `schemes` and a host, without a trailing slash."""
    value = _raw(name) or default
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a valid URL: it must be absolute, start with "
            f"{' or '.join(s + '://' for s in schemes)} and name a host."
        )
    return value.rstrip("/")


def env_choice(name: str, default: str, *, choices: tuple[str, ...]) -> str:
    value = _raw(name) or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} must be one of: {', '.join(choices)}.")
    return value


def env_prefixed(prefix: str) -> dict[str, str]:
    """Return every variable that starts with `prefix`, keyed by the rest of its name."""
    return {
        key[len(prefix) :]: value
        for key, value in os.environ.items()
        if key.startswith(prefix) and value.strip() != ""
    }


def env_languages(name: str, default: list[str]) -> list[tuple[str, str]]:
    """Return Django's LANGUAGES from a comma-separated list of language codes.

    Each code must be one Django knows (django.conf.locale.LANG_INFO), so that its
    name, direction and plural rules come with it; the name shown is the language's
    own ("简体中文", "Русский"), as a reader looks for it. The first is the default.
    """
    from django.conf.locale import LANG_INFO

    codes = [code.lower() for code in env_list(name, default)]
    if not codes:
        raise ImproperlyConfigured(f"{name} names no language: give e.g. en,zh-hans.")
    unknown = [
        code for code in codes if code not in LANG_INFO or "name_local" not in LANG_INFO[code]
    ]
    if unknown:
        raise ImproperlyConfigured(
            f"{name}: unknown language code(s) {', '.join(unknown)}; use Django's codes, "
            "e.g. en, zh-hans, ru, fr."
        )
    if len(set(codes)) != len(codes):
        raise ImproperlyConfigured(f"{name}={','.join(codes)} names a language twice.")
    return [(code, LANG_INFO[code]["name_local"]) for code in codes]
