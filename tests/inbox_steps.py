"""Steps shared by the inbox tests: filled-in forms, a solved code, files of each kind."""

from __future__ import annotations

import io
import os
import zipfile

from captcha.models import CaptchaStore
from django.core.files.uploadedfile import SimpleUploadedFile

from newsletter.selectors.subscribers import consent_text_current
from tests.factories import default_newsletter
from tests.reader_steps import aged_stamp

ASK = "/newsletter/ask/"
WRITE = "/newsletter/write-to-us/"

QUESTION = "How do I find last year's reports on the China-Laos railway?"
STORY = "Our cooperative in Almaty started exporting apples by the new rail link.\nHere is how."


def solved_code() -> dict:
    """Return the identifying-code fields of a form, answered as a person would."""
    key = CaptchaStore.generate_key()
    return {"captcha_0": key, "captcha_1": CaptchaStore.objects.get(hashkey=key).response}


def ask_data(**overrides) -> dict:
    """Return the POST body of a correctly filled "Ask Us A Question" form."""
    data = {
        "name": "Amina Yusuf",
        "email": "amina@example.org",
        "organisation": "Lagos Port Authority",
        "country": "NG",
        "body": QUESTION,
        "consent": "on",
        "stamp": aged_stamp(),
        "website": "",
        "consent_version": str(consent_text_current(newsletter=default_newsletter()).version),
        **solved_code(),
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def write_data(**overrides) -> dict:
    """Return the POST body of a correctly filled "Write to Us" form (no file)."""
    return ask_data(
        **{
            "body": STORY,
            "link": "https://example.org/apples",
            "email": "erlan@example.kz",
            **overrides,
        }
    )


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 17
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32 + b"\xff\xd9"
TEXT = "Apples, rails and a cooperative: notes from Алматы.\n".encode()
EXE = b"MZ\x90\x00" + b"\x00" * 60


def docx(*, macros: bool = False, document: bool = True) -> bytes:
    """Return a minimal Word file; with `macros`, one carrying a VBA project (a .docm)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        if document:
            archive.writestr("word/document.xml", "<w:document/>")
        if macros:
            archive.writestr("word/vbaProject.bin", b"\x00" * 16)
    return out.getvalue()


def upload(name: str, content: bytes, content_type: str = "application/octet-stream"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def docx_bomb(
    *, inflated_mb: int = 0, entries: int = 0, nested: bool = False, dense: bool = False
) -> bytes:
    """Return a real .docx that is also a zip bomb: huge inflated, or with many entries.

    `dense` pads with random binary digits, which pack only about eight to one, so the
    file passes the ratio check and only its unpacked size can refuse it.
    """
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
        if inflated_mb and not nested:
            size = inflated_mb * 1024 * 1024
            padding = os.urandom(size).translate(bytes(48 + (b & 1) for b in range(256)))
            archive.writestr("word/media/padding.xml", padding if dense else b"\0" * size)
        if inflated_mb and nested:
            # The bomb is an "embedded spreadsheet": a ZIP inside the ZIP.
            inner = io.BytesIO()
            with zipfile.ZipFile(inner, "w", compression=zipfile.ZIP_DEFLATED) as sheet:
                sheet.writestr("xl/padding.xml", b"\0" * (inflated_mb * 1024 * 1024))
            archive.writestr("word/embeddings/sheet1.xlsx", inner.getvalue(), zipfile.ZIP_STORED)
        for n in range(entries):
            archive.writestr(f"word/media/part{n}.xml", "<p/>")
    return out.getvalue()
