"""Anymail's Mailgun backend, with each variant's body form-encoded once, not once per call.

Mailgun's send API takes a form (application/x-www-form-urlencoded). For every call
requests encoded the whole form again, and in a digest batch that is mostly the same
40 KB of HTML and text: a third of the workers' CPU went there (issue 16's profile).
This payload hands requests the form already encoded, with each large field encoded
once and remembered (by its text) for the next calls of the batch. Everything else
is anymail's own Mailgun payload: addresses, merge data as recipient-variables,
metadata, headers, and the parsing of Mailgun's answer.

Use it as EMAIL_BACKEND=newsletter.sending.mailgun.EmailBackend (the batch path
recognises it as anymail's Mailgun backend).
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import quote_plus

from anymail.backends.mailgun import EmailBackend as AnymailMailgunBackend
from anymail.backends.mailgun import MailgunPayload

# Fields at least this long (the html and text bodies) are encoded once per text.
LARGE = 4096


@lru_cache(maxsize=32)
def _encoded_once(value: str) -> str:
    return quote_plus(value)


def form_encode(data: dict) -> bytes:
    """Return `data` ({field: value or [values]}) encoded as requests would encode it."""
    pairs = []
    for key, values in data.items():
        for value in values if isinstance(values, list | tuple) else [values]:
            if value is None:
                continue
            text = value if isinstance(value, str) else str(value)
            encoded = _encoded_once(text) if len(text) >= LARGE else quote_plus(text)
            pairs.append(f"{quote_plus(key)}={encoded}")
    return "&".join(pairs).encode("ascii")


class PreEncodedMailgunPayload(MailgunPayload):
    def serialize_data(self):
        data = super().serialize_data()
        if self.files:  # attachments: requests builds multipart/form-data from the dict
            return data
        self.headers["Content-Type"] = "application/x-www-form-urlencoded"
        return form_encode(data)


class EmailBackend(AnymailMailgunBackend):
    def build_message_payload(self, message, defaults):
        return PreEncodedMailgunPayload(message, defaults, self)
