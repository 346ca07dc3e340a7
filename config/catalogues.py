"""Compile the translation catalogues (.po to .mo) in pure Python, with Babel.

Django's `compilemessages` needs GNU gettext's `msgfmt`, a system package a fresh
machine does not have; Babel (the Pallets/Python i18n library) reads and writes
the same formats from the venv, so `make test`, `make demo` and the `release` step
compile the catalogues with nothing installed by hand. The .mo files are build
output and are not committed: the .po files are the source of truth.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po


class CatalogueError(Exception):
    """A .po file that cannot be compiled; the message names the file and line."""


def _formatted(message) -> bool:
    """Whether the message is filled in with %-placeholders, so they must match.

    Our code formats only with named placeholders (%(name)s); Babel also takes text
    like "0.3 % limit" for a format ("% li"), which nothing ever formats.
    """
    ids = message.id if isinstance(message.id, tuple | list) else (message.id,)
    return any("%(" in text or "%%" in text for text in ids)


def catalogues_compile(*, locale_dirs: Iterable[Path], force: bool = False) -> list[Path]:
    """Compile every <dir>/<lang>/LC_MESSAGES/*.po whose .mo is missing or older.

    Return the .mo files written. Fuzzy entries are left out, as msgfmt does, so a
    translation nobody has checked never reaches a reader.
    """
    written = []
    for locale_dir in locale_dirs:
        for po_path in sorted(Path(locale_dir).glob("*/LC_MESSAGES/*.po")):
            mo_path = po_path.with_suffix(".mo")
            if (
                not force
                and mo_path.exists()
                and mo_path.stat().st_mtime >= po_path.stat().st_mtime
            ):
                continue
            try:
                with po_path.open("rb") as po_file:
                    catalogue = read_po(po_file, abort_invalid=True)
            except Exception as exc:
                raise CatalogueError(f"{po_path}: {exc}") from exc
            errors = [
                f"{po_path}:{message.lineno}: {error}"
                for message, errs in catalogue.check()
                if _formatted(message)
                for error in errs
            ]
            if errors:
                raise CatalogueError("\n".join(errors))
            tmp = mo_path.with_suffix(".mo.tmp")
            with tmp.open("wb") as mo_file:
                write_mo(mo_file, catalogue, use_fuzzy=False)
            tmp.replace(mo_path)  # a running server never reads half a file
            written.append(mo_path)
    return written
