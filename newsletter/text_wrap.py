# ruff: noqa: RUF001, RUF002 - this module is about Chinese punctuation
"""Wrap plain text for the text part of an email, Chinese included.

Django's `wordwrap` breaks only at spaces, so a Chinese paragraph (no spaces)
stays one line of hundreds of characters. Here a line may break between any two
CJK characters, except before closing punctuation (，。、！？ etc. never start a
line: the Chinese typesetting rule, 禁则), and widths count a CJK character as two
columns, as terminals and mail clients show it. A URL is never broken: a broken
link is a dead link in every client that linkifies text.
"""

from __future__ import annotations

import re
import unicodedata

_TOKEN = re.compile(r"(?P<url>https?://\S+)|(?P<space>[ \t]+)|(?P<word>[^\s])")
# Characters that must not begin a line (they close or punctuate what came before).
_NO_LINE_START = set("，。、；：！？）》」』】〕〉”’…—·,.;:!?)]}%")


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in "WF"


def _units(line: str) -> list[str]:
    """Split a line into unbreakable units: URLs, spaces, Latin words, single CJK characters."""
    units: list[str] = []
    for match in _TOKEN.finditer(line):
        piece = match.group(0)
        if match.group("word"):
            # Latin letters join the word before them; a CJK character stands alone;
            # closing punctuation sticks to whatever it follows.
            if (units and piece in _NO_LINE_START and not units[-1].isspace()) or (
                units
                and not _is_wide(piece)
                and not units[-1].isspace()
                and not _is_wide(units[-1][-1])
                and not units[-1].startswith(("http://", "https://"))
            ):
                units[-1] += piece
            else:
                units.append(piece)
        else:
            units.append(piece)
    return units


def wrap_text(text: str, width: int = 72) -> str:
    """Return `text` with each line wrapped at `width` columns (CJK counted double)."""
    out: list[str] = []
    for line in text.splitlines() or [""]:
        current = ""
        for unit in _units(line):
            if unit.isspace():
                if current:
                    current += " "
                continue
            if current and _width(current) + _width(unit) > width:
                out.append(current.rstrip())
                current = ""
            current += unit
        out.append(current.rstrip())
    return "\n".join(out)
