"""A contribution's file kept on the server while the reader fixes the rest of the form.

Browsers never refill a file input, so a story sent with a file and a missing tick
would lose the file (issue 15). When the form fails on something else, the file,
already checked, is kept under MEDIA_ROOT/inbox-held/ under a random name, and the
page carries a signed, expiring reference to it (`hold`); the corrected submit
brings the reference back and gets the file (`take`). The reference names the stored
file only through the signature: a value the client made up, or a path, is never
opened. A file is taken once; one never taken is deleted after HOLD_SECONDS by the
next hold (`purge`), so abandoned files do not pile up without a scheduled task.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile, UploadedFile

HOLD_SECONDS = 24 * 3600
# Failed forms cost a sender nothing: past this many files held at once nothing more
# is kept (the page asks for the file again), so they cannot fill the disk.
HOLD_MAX_FILES = 500
_SALT = "inbox.held-file"
_STORED = re.compile(r"[0-9a-f]{32}")


def _held_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "inbox-held"
    path.mkdir(parents=True, exist_ok=True)
    return path


def hold(upload: UploadedFile, *, now: float | None = None) -> str:
    """Keep `upload` (already checked); return the signed reference that gives it back, or ""."""
    if purge(now=now) >= HOLD_MAX_FILES:
        return ""
    stored = uuid.uuid4().hex
    with open(_held_dir() / stored, "wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    upload.seek(0)
    return signing.dumps({"f": stored, "n": (upload.name or "")[:300]}, salt=_SALT, compress=True)


def take(reference: str) -> UploadedFile | None:
    """Return the file `reference` keeps, once (it is deleted), or None if it is gone or forged."""
    found = _resolve(reference)
    if found is None:
        return None
    path, name = found
    try:
        content = path.read_bytes()
        path.unlink()
    except FileNotFoundError:  # taken by a submit a moment ago
        return None
    return SimpleUploadedFile(name, content)


def purge(*, now: float | None = None) -> int:
    """Delete held files older than HOLD_SECONDS; return how many are still held."""
    cutoff = (now or time.time()) - HOLD_SECONDS
    held = 0
    for path in _held_dir().iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
            else:
                held += 1
        except FileNotFoundError:
            continue
    return held


def _resolve(reference: str) -> tuple[Path, str] | None:
    if not reference:
        return None
    try:
        data = signing.loads(reference, salt=_SALT, max_age=HOLD_SECONDS)
    except signing.BadSignature:  # forged, altered or expired
        return None
    stored = str(data.get("f", "")) if isinstance(data, dict) else ""
    if not _STORED.fullmatch(stored):
        return None
    path = _held_dir() / stored
    return (path, str(data.get("n", ""))) if path.is_file() else None
