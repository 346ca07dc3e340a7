"""Clean text at the door: NUL and the other C0 control characters never reach the database.

PostgreSQL refuses NUL in text and jsonb (the query fails and the request answers
500), SQLite stores it silently, and neither is ever something a person meant to
type. So every outside input passes one function here before it is used: the
middleware below cleans query strings and form posts (admin filters and searches
included), and feed import, CSV import and the ESP webhooks call `clean_text` or
`clean_data` on what they parsed. Tab, line feed and carriage return stay, because
they belong in multi-line text; fields that must be on one line still refuse them
(newsletter/forms.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, QueryDict

# C0 controls except \t \n \r, DEL, and the C1 controls (never typed, invisible in admin).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean_text(value: str) -> str:
    """Return `value` without NUL and the other control characters (tab and newlines stay)."""
    if not value:
        return value
    return _CONTROL.sub("", value)


def clean_data(value: Any) -> Any:
    """Return parsed data (JSON, a dict of form values) with every string in it cleaned.

    Keys are cleaned as well as values: a JSON key with a NUL is as fatal to jsonb.
    """
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_data(key): clean_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(clean_data(item) for item in value)
    return value


def clean_querydict(data: QueryDict) -> QueryDict:
    """Return a cleaned, immutable copy of `data` (or `data` itself when nothing needs it)."""
    if not any(_CONTROL.search(key) or any(map(_CONTROL.search, values)) for key, values in data.lists()):
        return data
    cleaned = QueryDict(mutable=True, encoding=data.encoding)
    for key, values in data.lists():
        cleaned.setlist(clean_text(key), [clean_text(value) for value in values])
    cleaned._mutable = False
    return cleaned


class ControlCharacterMiddleware:
    """Clean the query string and the posted form fields of every request.

    Uploaded files are left alone (a .docx is binary); what is read from them is
    cleaned where it is parsed. The raw body is left alone too: a webhook signature
    is computed over the exact bytes, and JSON escapes a NUL as text (\\u0000), so
    the webhooks clean what they parsed instead.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.GET = clean_querydict(request.GET)
        if request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            request.POST = clean_querydict(request.POST)
        return self.get_response(request)
