"""WCAG 2 contrast of the text in an inlined-CSS email, read from the style attributes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

VOID = {"br", "img", "meta", "input", "hr", "link", "col", "area", "base", "source", "wbr"}
_COLOR = re.compile(r"(?:^|;)\s*color:\s*(#[0-9a-fA-F]{3,6})")
_BACKGROUND = re.compile(r"(?:^|;)\s*background(?:-color)?:\s*(#[0-9a-fA-F]{3,6})")
_HIDDEN = re.compile(r"(?:^|;)\s*display:\s*none")


def _rgb(colour: str) -> tuple[float, float, float]:
    value = colour.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    return tuple(int(value[i : i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def luminance(colour: str) -> float:
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in _rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(foreground: str, background: str) -> float:
    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@dataclass(frozen=True)
class Text:
    text: str
    classes: str
    color: str
    background: str

    @property
    def ratio(self) -> float:
        return contrast(self.color, self.background)


class _Walker(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, str, str, str, bool]] = [("", "#000000", "#ffffff", "", False)]
        self.texts: list[Text] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            return
        _, color, background, classes, hidden = self.stack[-1]
        values = dict(attrs)
        style = values.get("style") or ""
        if match := _COLOR.search(style):
            color = match.group(1)
        if match := _BACKGROUND.search(style):
            background = match.group(1)
        hidden = hidden or bool(_HIDDEN.search(style)) or tag in {"style", "title", "head"}
        self.stack.append((tag, color, background, values.get("class") or classes, hidden))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        while len(self.stack) > 1:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        _, color, background, classes, hidden = self.stack[-1]
        if data.strip() and not hidden:
            self.texts.append(Text(data.strip(), classes, color, background))


def texts_of(html: str) -> list[Text]:
    """Return each visible piece of text with the colour and background it inherits."""
    walker = _Walker()
    walker.feed(html)
    return walker.texts
