"""Every email is three templates — subject, text and HTML — rendered by one helper.

templates/emails/<name>.subject.txt, <name>.txt and <name>.html. The HTML gets its
CSS inlined with css-inline, because Gmail and Outlook drop <style> blocks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import formataddr, make_msgid
from urllib.parse import urlsplit

import css_inline
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation

from newsletter.models import Newsletter

_inliner = css_inline.CSSInliner(keep_style_tags=True)
# Inlining repeats each rule's font stack (Latin and Chinese faces, issue 14) on every
# element, and the digest must stay under Gmail's clipping size (issue 10) with issue
# 15's contents and dark mode: the body's indentation and blank lines and the spaces after
# the commas of font lists are dropped, which no client renders differently.
_INDENT = re.compile(r"\n[ \t]*(?:\n[ \t]*)*")
_FONT_LIST = re.compile(r"font-family:[^;\"]*")


def _compact(html: str) -> str:
    head, mark, body = html.partition("</head>")
    if mark:  # the <style> block is left as written
        html = head + mark + _INDENT.sub("\n", body)
    return _FONT_LIST.sub(lambda m: m.group(0).replace(", ", ","), html)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
    # The From display name in the email's language (issue 14); blank: the newsletter's.
    from_name: str = ""


def one_line(value: str) -> str:
    """Return `value` on one line: CR and LF never reach a header."""
    return " ".join(value.split())


def render_email(name: str, context: dict, *, language: str | None = None) -> RenderedEmail:
    """Render templates/emails/<name>.{subject.txt,txt,html} with `context` in `language`.

    Without a language, the default one (the newsroom's, for editors' emails): never
    whatever language the request or task that sends it happens to have active.
    """
    context = {"site_url": settings.SITE_URL, **context}
    with translation.override(language or settings.LANGUAGE_CODE):
        subject = one_line(render_to_string(f"emails/{name}.subject.txt", context))
        text = render_to_string(f"emails/{name}.txt", context).strip() + "\n"
        html = _compact(_inliner.inline(render_to_string(f"emails/{name}.html", context)))
        newsletter = context.get("newsletter")
        from_name = newsletter.display_from_name if isinstance(newsletter, Newsletter) else ""
    return RenderedEmail(subject=subject, text=text, html=html, from_name=from_name)


def site_domain() -> str:
    return urlsplit(settings.SITE_URL).hostname or "localhost"


def from_address(newsletter: Newsletter, *, name: str = "") -> str:
    """Return the From header: `name` (the email's language's), else the newsletter's.

    Python's email package (Django's EmailMessage) RFC 2047-encodes a non-ASCII display
    name ("=?utf-8?b?...?="), so 一带一路周刊 travels as ASCII; tests/test_editions.py proves it.
    """
    return formataddr((one_line(name or newsletter.display_from_name), newsletter.from_email))


def build_message(
    rendered: RenderedEmail,
    *,
    newsletter: Newsletter,
    to: str,
    headers: dict[str, str] | None = None,
) -> EmailMultiAlternatives:
    """Return a text + HTML message from the newsletter, with a Message-ID of our own."""
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=from_address(newsletter, name=rendered.from_name),
        to=[to],
        reply_to=[newsletter.reply_to] if newsletter.reply_to else None,
        headers={"Message-ID": make_msgid(domain=site_domain()), **(headers or {})},
    )
    message.attach_alternative(rendered.html, "text/html")
    return message


def send_email(
    name: str, *, newsletter: Newsletter, to: str, context: dict, language: str | None = None
) -> None:
    """Render and send one transactional email (confirmation, welcome, ...) in `language`."""
    rendered = render_email(name, {"newsletter": newsletter, **context}, language=language)
    build_message(rendered, newsletter=newsletter, to=to).send()
