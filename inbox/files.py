"""Which attachments a contribution may carry, told by their content, never by their name.

A file's name and the type the browser claims are whatever the sender chose; its first
bytes are what a program opening it will see. So a file is accepted only when its
content is one of a few safe document and image types AND its name ends as that type
does; an .exe renamed .pdf, a macro-enabled Word file renamed .docx or a PDF named
.txt is refused.
"""

from __future__ import annotations

import io
import unicodedata
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import PurePath
from typing import IO

from django.conf import settings


@dataclass(frozen=True)
class FileKind:
    label: str
    content_type: str
    extensions: tuple[str, ...]


PDF = FileKind("PDF", "application/pdf", (".pdf",))
DOCX = FileKind(
    "Word (.docx)",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    (".docx",),
)
TEXT = FileKind("plain text", "text/plain; charset=utf-8", (".txt",))
JPEG = FileKind("JPEG", "image/jpeg", (".jpg", ".jpeg"))
PNG = FileKind("PNG", "image/png", (".png",))
ALLOWED = (PDF, DOCX, TEXT, JPEG, PNG)
ACCEPT = ",".join(ext for kind in ALLOWED for ext in kind.extensions)


def allowed_labels() -> str:
    return ", ".join(kind.label for kind in ALLOWED)


def _is_docx(file: IO[bytes]) -> bool:
    # A .docx is a ZIP holding word/document.xml. One with vbaProject.bin carries macros
    # (a renamed .docm): refused. Only the directory is read; nothing is decompressed.
    try:
        with zipfile.ZipFile(file) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    return (
        "[Content_Types].xml" in names
        and "word/document.xml" in names
        and not any(name.lower().endswith("vbaproject.bin") for name in names)
    )


# A real Word file inflates a few times over; a zip bomb, thousands of times.
def docx_max_uncompressed() -> int:
    """Return the most a .docx may unpack to, every entry and nested archive together."""
    return settings.INBOX_DOCX_MAX_UNPACKED_MB * 1024 * 1024


DOCX_MAX_RATIO = 100  # uncompressed / compressed, for the whole and for any one entry
DOCX_MAX_ENTRIES = 1000  # every entry, nested archives included
_NEST_DEPTH = 3
_CHUNK = 64 * 1024


class ArchiveRefused(Exception):
    """The archive inflates past a limit; the message says which, for the sender."""


def _inflate_check(file: IO[bytes], budget: dict[str, int], depth: int) -> None:
    # Sizes in a ZIP's directory are what its maker wrote, so every entry is really
    # inflated, in chunks, and counted as it comes; it stops at the first limit passed.
    # An entry that is a ZIP itself (an embedded spreadsheet) is checked the same way,
    # against the same budget: the bottom of the archive is what counts.
    with zipfile.ZipFile(file) as archive:
        infos = archive.infolist()
        budget["entries"] += len(infos)
        if budget["entries"] > DOCX_MAX_ENTRIES:
            raise ArchiveRefused("entries")
        for info in infos:
            inflated = 0
            head = b""
            nested = io.BytesIO() if depth < _NEST_DEPTH else None
            with archive.open(info) as entry:
                while chunk := entry.read(_CHUNK):
                    inflated += len(chunk)
                    budget["size"] += len(chunk)
                    if budget["size"] > docx_max_uncompressed():
                        raise ArchiveRefused("size")
                    if inflated > max(info.compress_size, 1) * DOCX_MAX_RATIO and inflated > _CHUNK:
                        raise ArchiveRefused("ratio")
                    if len(head) < 4:
                        head += chunk[:4]
                    if nested is not None and head.startswith(b"PK\x03\x04"):
                        nested.write(chunk)
            if nested is not None and head.startswith(b"PK\x03\x04"):
                nested.seek(0)
                try:
                    _inflate_check(nested, budget, depth + 1)
                except zipfile.BadZipFile:
                    pass  # bytes that only look like a ZIP: counted above, nothing more inside
        compressed = sum(info.compress_size for info in infos) or 1
        if depth == 0 and budget["size"] > max(compressed * DOCX_MAX_RATIO, _CHUNK):
            raise ArchiveRefused("ratio")


def docx_refusal(file: IO[bytes]) -> str | None:
    """Return why a .docx is refused (too big inflated, too compressed, too many entries), or None.

    The reasons are the codes "size", "ratio" and "entries"; the form words them.
    """
    file.seek(0)
    try:
        _inflate_check(file, {"size": 0, "entries": 0}, 0)
    except ArchiveRefused as refused:
        return str(refused)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError):
        return "broken"
    finally:
        file.seek(0)
    return None


def _is_text(file: IO[bytes]) -> bool:
    data = file.read()
    if b"\x00" in data:
        return False
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    return not any(unicodedata.category(char) == "Cc" and char not in "\t\n\r\f" for char in text)


def sniff(file: IO[bytes]) -> FileKind | None:
    """Return the kind of file `file` holds, by its content, or None if it is none we take."""
    file.seek(0)
    head = file.read(8)
    file.seek(0)
    try:
        if head.startswith(b"%PDF-"):
            return PDF
        if head.startswith(b"\x89PNG\r\n\x1a\n"):
            return PNG
        if head.startswith(b"\xff\xd8\xff"):
            return JPEG
        if head.startswith(b"PK\x03\x04"):
            return DOCX if _is_docx(file) else None
        return TEXT if _is_text(file) else None
    finally:
        file.seek(0)


def extension(name: str) -> str:
    return PurePath(name).suffix.lower()


def display_name(name: str, kind: FileKind) -> str:
    """Return the sender's file name, safe to show and to offer as a download name.

    Only its last path part, without control characters or quotes, at most 100
    characters, and always ending in the extension of what the file really is.
    """
    base = PurePath(name.replace("\\", "/")).name
    base = "".join(
        char for char in base if unicodedata.category(char)[0] != "C" and char not in "\"'`<>"
    ).strip(" .")
    stem = PurePath(base).stem[:90] or "attachment"
    suffix = extension(base) if extension(base) in kind.extensions else kind.extensions[0]
    return f"{stem}{suffix}"


def storage_name(kind: FileKind) -> str:
    """Return a random name to store the file under: nothing the sender typed reaches the disk."""
    return f"{uuid.uuid4().hex}{kind.extensions[0]}"
