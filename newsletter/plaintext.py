"""HTML (and Markdown, through its HTML) as the readable text of an email's plain part.

A plain-text part that shows `**bold**`, `<p>` or `[a link](https://…)` reads as
broken to the readers who chose plain text, and to spam filters. Python's own HTML
parser is enough here: the input is our sanitised HTML (nh3 leaves only simple tags),
so the rules are few — blocks become paragraphs, list items bullets, links "text
(url)", everything else its text. A library such as html2text would do the same
with a GPL licence and many more rules than this small, known input needs.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = {"p", "div", "blockquote", "pre", "table", "tr", "h1", "h2", "h3", "h4", "h5", "h6"}
_LISTS = {"ul", "ol"}


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str | None] = []
        self.lists: list[list[int]] = []  # per open list: [is_ordered, counter]

    def _break(self, tag: str) -> None:
        # Paragraphs inside a list item (Markdown's "loose" lists) stay on the bullet's line.
        if (tag in _LISTS and not self.lists) or (tag in _BLOCKS and not self.lists):
            self.parts.append("\n\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._break(tag)
        if tag in _LISTS:
            self.lists.append([tag == "ol", 0])
        elif tag == "li":
            depth = max(len(self.lists) - 1, 0)
            marker = "-"
            if self.lists and self.lists[-1][0]:
                self.lists[-1][1] += 1
                marker = f"{self.lists[-1][1]}."
            self.parts.append("\n" + "  " * depth + marker + " ")
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "a":
            self.links.append(dict(attrs).get("href"))
            self.parts.append("\x00")  # where the link text starts

    def handle_endtag(self, tag: str) -> None:
        if tag in _LISTS and self.lists:
            self.lists.pop()
        self._break(tag)
        if tag == "a" and self.links:
            href = self.links.pop()
            start = len(self.parts) - 1 - self.parts[::-1].index("\x00")
            label = "".join(self.parts[start + 1 :]).strip()
            del self.parts[start:]
            if href and href != label:
                self.parts.append(f"{label} ({href})" if label else href)
            else:
                self.parts.append(label)

    def handle_data(self, data: str) -> None:
        self.parts.append(re.sub(r"\s+", " ", data))


def readable_text(html: str) -> str:
    """Return the text a person reads in `html`: paragraphs, bullets, links with their URL."""
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    text = "".join(part for part in parser.parts if part != "\x00")
    # Bullets keep their indent (nested lists); other lines lose the spaces tags left.
    lines = [
        re.sub(r"^(\s*(?:-|\d+\.)) +", r"\1 ", line.rstrip())
        if re.match(r"\s*(-|\d+\.) ", line)
        else line.strip()
        for line in text.split("\n")
    ]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
