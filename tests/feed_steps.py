"""Steps shared by the feed tests: write a feed file, run import_articles on it."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command


def write(tmp_path, name: str, content: str) -> str:
    """Write `content` to tmp_path/name and return its path."""
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return str(path)


def import_articles(source: str) -> tuple[str, str]:
    """Run `manage.py import_articles source`; return what it wrote to stdout and stderr."""
    out, err = StringIO(), StringIO()
    call_command("import_articles", source, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()
