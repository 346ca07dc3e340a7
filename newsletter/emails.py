"""Every email is three templates — subject, text and HTML — and one small function here.

templates/emails/<name>.subject.txt, <name>.txt and <name>.html. The HTML gets its
CSS inlined with css-inline, because Gmail and Outlook drop <style> blocks.
`render_email` renders the three, `build_message` makes the message from a sender (the
newsletter, or a plain address for staff mail), and each reader email below is a
function that says what it needs; the services make the links and tokens and send.
The digest's messages are built in sending/messages.py, the editors' in
services/editors.py.
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

from articles.languages import reader_language
from newsletter.models import Newsletter, Subscriber

_inliner = css_inline.CSSInliner(keep_style_tags=True)
# Inlining repeats each rule's font stack (Latin and Chinese faces, issue 14) on every
# element, and the digest must stay under Gmail's clipping size (issue 10) with issue
# 15's contents and dark mode: the body's indentation and blank lines and the spaces after
# the commas of font lists are dropped, which no client renders differently.
_INDENT = re.compile(r"\n[ \t]*(?:\n[ \t]*)*")
_FONT_LIST = re.compile(r"font-family:[^;\"]*")


# SMTP limits a line to 998 bytes; 700 leaves room for the links put in per reader.
HTML_LINE_BYTES = 700
_WHITESPACE_RUN = re.compile(r"\s*\n\s*")


def compact_html(html: str, *, line_bytes: int | None = None) -> str:
    """Return `html` smaller, rendering the same: the one step every email's HTML takes.

    Always: the body's indentation and blank lines and the spaces after the commas of
    font lists go (the <style> block is left as written). With `line_bytes` (the
    digest as it is sent), the HTML goes on a few long lines instead of a few
    hundred: a line break and indentation in HTML render as one space, so this
    changes no pixel, and every SMTP hop (and the ESP) reads the message line by
    line. Lines are cut by their length in UTF-8 bytes, which is what SMTP counts: a
    Chinese character is three (issue 14). A line over 998 bytes would make Django
    quoted-printable the part, splitting the per-reader tokens, and every copy of
    the variant would be built one by one. Not for an email with preformatted text
    (the editors' ticket notice): its line breaks are its content.
    """
    head, mark, body = html.partition("</head>")
    if mark:
        html = head + mark + _INDENT.sub("\n", body)
    html = _FONT_LIST.sub(lambda m: m.group(0).replace(", ", ","), html)
    if line_bytes is None:
        return html
    flat = _WHITESPACE_RUN.sub(" ", html).encode()
    lines, start, carry = [], 0, b""
    while len(flat) - start > line_bytes:
        # Cut at a space (ASCII, so never inside a multi-byte character).
        cut = flat.rfind(b" ", start, start + line_bytes)
        if cut > start:
            lines.append(carry + flat[start:cut])
            start, carry = cut + 1, b""
            continue
        # A long run of Chinese has no space: cut between two characters, inside an
        # HTML comment, so the line break is no whitespace on the page.
        cut = _between_characters(flat, start, start + line_bytes)
        if cut is None:
            break
        lines.append(carry + flat[start:cut] + b"<!--")
        start, carry = cut, b"-->"
    lines.append(carry + flat[start:])
    return b"\n".join(lines).decode()


def _between_characters(flat: bytes, start: int, end: int) -> int | None:
    """Return the last offset in (start, end] between two multi-byte characters of text.

    Not inside a tag (an attribute value), and never inside a character: the byte
    there starts a character and the byte before it ends a multi-byte one.
    """
    for cut in range(end, start, -1):
        if (
            0xC0 <= flat[cut] <= 0xF7
            and 0x80 <= flat[cut - 1] <= 0xBF
            and flat.rfind(b"<", 0, cut) < flat.rfind(b">", 0, cut)
        ):
            return cut
    return None


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
        html = compact_html(_inliner.inline(render_to_string(f"emails/{name}.html", context)))
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
    sender: Newsletter | str,
    to: str,
    headers: dict[str, str] | None = None,
) -> EmailMultiAlternatives:
    """Return a text + HTML message from `sender`, with a Message-ID of our own.

    `sender` is the newsletter (its From in the email's language, and its Reply-To),
    or a plain address for staff mail (DEFAULT_FROM_EMAIL).
    """
    if isinstance(sender, Newsletter):
        from_email = from_address(sender, name=rendered.from_name)
        reply_to = [sender.reply_to] if sender.reply_to else None
    else:
        from_email, reply_to = sender, None
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=from_email,
        to=[to],
        reply_to=reply_to,
        headers={"Message-ID": make_msgid(domain=site_domain()), **(headers or {})},
    )
    message.attach_alternative(rendered.html, "text/html")
    return message


# --- The reader emails ------------------------------------------------------------------
# Each in the reader's language, from the newsletter, tagged and with the reader's id as
# metadata (the ESP hands it back with a bounce or complaint).


def _reader_message(
    name: str,
    subscriber: Subscriber,
    context: dict,
    *,
    to: str = "",
    headers: dict[str, str] | None = None,
) -> EmailMultiAlternatives:
    newsletter = subscriber.newsletter
    message = build_message(
        render_email(
            name,
            {"newsletter": newsletter, **context},
            language=reader_language(subscriber.language),
        ),
        sender=newsletter,
        to=to or subscriber.email,
        headers=headers,
    )
    message.tags = ["reader", name]
    message.metadata = {"subscriber": str(subscriber.pk), "email": name}
    return message


def confirm(subscriber: Subscriber, *, confirm_url: str) -> EmailMultiAlternatives:
    """Ask a new (or returning) reader to confirm; nothing they typed is in it."""
    return _reader_message(
        "confirm",
        subscriber,
        {"confirm_url": confirm_url, "max_age_days": settings.NEWSLETTER_CONFIRM_MAX_AGE_DAYS},
    )


def confirm_email_change(
    subscriber: Subscriber, *, to: str, confirm_url: str
) -> EmailMultiAlternatives:
    """Ask the owner of a new address to confirm it is theirs."""
    return _reader_message(
        "confirm_email_change",
        subscriber,
        {"confirm_url": confirm_url, "max_age_days": settings.NEWSLETTER_CONFIRM_MAX_AGE_DAYS},
        to=to,
    )


def email_changed(subscriber: Subscriber, *, to: str) -> EmailMultiAlternatives:
    """Tell the old address that the reader's address is now another."""
    return _reader_message("email_changed", subscriber, {"new_email": subscriber.email}, to=to)


def welcome(
    subscriber: Subscriber, *, links: dict[str, str], headers: dict[str, str]
) -> EmailMultiAlternatives:
    """Welcome a confirmed reader: their preferences, unsubscribe and latest-issue links."""
    return _reader_message("welcome", subscriber, links, headers=headers)


def already_subscribed(
    subscriber: Subscriber,
    *,
    links: dict[str, str],
    headers: dict[str, str],
    apply_url: str = "",
) -> EmailMultiAlternatives:
    """Tell a subscribed reader who signed up again; `apply_url` offers the details they typed."""
    context: dict = dict(links)
    if apply_url:
        context["apply_url"] = apply_url
        context["max_age_days"] = settings.NEWSLETTER_CONFIRM_MAX_AGE_DAYS
    return _reader_message("already_subscribed", subscriber, context, headers=headers)


def repermission(
    subscriber: Subscriber, *, context: dict, headers: dict[str, str]
) -> EmailMultiAlternatives:
    """Ask a reader who stopped opening whether to keep sending (services/sunset.py)."""
    message = _reader_message("repermission", subscriber, context, headers=headers)
    # Our ESP reports bounces and complaints for this email too; the id finds the reader.
    message.metadata = {"subscriber": str(subscriber.pk)}
    message.tags = ["repermission"]
    return message
