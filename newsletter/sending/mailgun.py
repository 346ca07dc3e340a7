"""Anymail's Mailgun backend, with each variant's body form-encoded once, not once per call,
and readers' plain addresses taken as they are, not parsed again.

Mailgun's send API takes a form (application/x-www-form-urlencoded). For every call
requests encoded the whole form again, and in a digest batch that is mostly the same
40 KB of HTML and text: a third of the workers' CPU went there (issue 16's profile).
This payload hands requests the form already encoded, with each body (html, text)
encoded once and remembered (by its text) for the next calls of the batch.

Anymail parses every recipient with the standard library's RFC 5322 parser (about
half of building a 1,000-recipient payload). Our readers' addresses are plain ASCII
addr-specs, validated when they signed up: those become `PlainAddress` objects with
the attributes anymail reads; anything else (a display name, non-ASCII) still goes
through anymail's own parser. Everything else is anymail's own Mailgun payload:
merge data as recipient-variables, metadata, headers, and the reading of Mailgun's
answer.

Use it as EMAIL_BACKEND=newsletter.sending.mailgun.EmailBackend (the batch path
recognises it as anymail's Mailgun backend).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote_plus

from anymail.backends.mailgun import EmailBackend as AnymailMailgunBackend
from anymail.backends.mailgun import MailgunPayload
from anymail.utils import parse_address_list

# The fields every call of a variant repeats: encoded once per text. Only these: the
# other large field, recipient-variables, is new in every call, and remembering it
# kept 32 batches' worth (about a megabyte each) in every worker (the bench's RSS
# grew 22 MB from 10 to 100 batches).
BODIES = frozenset({"text", "html"})


@lru_cache(maxsize=32)
def body_encoded(body: str) -> str:
    """Return a body form-encoded, remembered for the next calls of its variant."""
    return quote_plus(body)


def form_encode(data: dict) -> bytes:
    """Return `data` ({field: value or [values]}) encoded as requests would encode it."""
    pairs = []
    for key, values in data.items():
        for value in values if isinstance(values, list | tuple) else [values]:
            if value is None:
                continue
            text = value if isinstance(value, str) else str(value)
            encoded = body_encoded(text) if key in BODIES else quote_plus(text)
            pairs.append(f"{quote_plus(key)}={encoded}")
    return "&".join(pairs).encode("ascii")


_PLAIN = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")


@dataclass(frozen=True)
class PlainAddress:
    """A plain ASCII addr-spec with the attributes anymail's EmailAddress offers."""

    addr_spec: str
    display_name: str = ""
    uses_eai: bool = False

    @property
    def username(self) -> str:
        return self.addr_spec.rpartition("@")[0]

    @property
    def domain(self) -> str:
        return self.addr_spec.rpartition("@")[2]

    @property
    def address(self) -> str:
        return self.addr_spec

    def format(self, **kwargs) -> str:
        return self.addr_spec  # nothing to quote, encode or IDNA-encode

    def __str__(self) -> str:
        return self.addr_spec


def recipients_parse(addresses) -> list:
    """Return the recipients as address objects: plain ones at once, others by anymail."""
    if isinstance(addresses, list | tuple) and all(
        isinstance(a, str) and _PLAIN.fullmatch(a) for a in addresses
    ):
        return [PlainAddress(a) for a in addresses]
    return parse_address_list(addresses, field="to")


class PreEncodedMailgunPayload(MailgunPayload):
    base_message_attrs = tuple(
        (attr, combiner, recipients_parse if attr == "to" else converter)
        for attr, combiner, converter in MailgunPayload.base_message_attrs
    )

    def serialize_data(self):
        data = super().serialize_data()
        if self.files:  # attachments: requests builds multipart/form-data from the dict
            return data
        self.headers["Content-Type"] = "application/x-www-form-urlencoded"
        return form_encode(data)


class EmailBackend(AnymailMailgunBackend):
    def build_message_payload(self, message, defaults):
        return PreEncodedMailgunPayload(message, defaults, self)
