"""A local stand-in for Mailgun's sending API, for tests and benchmarks.

It speaks the documented subset anymail's Mailgun backend uses — POST
/v3/<domain>/messages with form fields from, to (repeated), subject, text, html,
h:<Header>, v:<variable>, o:tag and recipient-variables (JSON, one object per
recipient, substituted for %recipient.KEY% everywhere) — answers as Mailgun does
({"id": "<…>", "message": "Queued. Thank you."}), and records what each recipient
would receive. Point anymail at it with ANYMAIL_MAILGUN_API_URL=<server.api_url>,
so anymail's real backend runs over real HTTP.

Errors on demand: `fail_next(n, status)` answers the next n calls with an error
(500 by default), `refuse(address)` answers 400 to any call naming that address,
as Mailgun does for a bad recipient, `rate_limit(seconds)` answers every call
429 with a Retry-After header for that long, as Mailgun does past a sending
limit (or 503, as an ESP that is briefly overloaded does), `drop_next(n)` takes the
next n calls and closes the connection without an answer, as a connection dropped
after the request went out does, and `delay` slows every call.

    with EspStandin() as esp:
        ... settings.ANYMAIL = {"MAILGUN_API_KEY": "key", "MAILGUN_API_URL": esp.api_url}
        esp.messages  # [Received(to=..., subject=..., text=..., html=..., headers=..., variables=...)]
"""

from __future__ import annotations

import base64
import collections
import json
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, unquote_plus

_PATH = re.compile(r"^/v3/(?P<domain>[^/]+)/messages$")
_RECIPIENT_VAR = re.compile(r"%recipient\.([^%]+)%")


@dataclass
class Received:
    """One recipient's copy, as Mailgun would build it from a call."""

    to: str
    subject: str
    text: str
    html: str
    headers: dict[str, str]
    variables: dict[str, str]  # Mailgun "user-variables": anymail metadata
    tags: list[str]
    message_id: str
    domain: str


@dataclass
class Call:
    domain: str
    recipients: list[str]
    status: int
    fields: dict[str, list[str]] = field(repr=False)


def _substitute(value: str, data: dict) -> str:
    if "%recipient." not in value:
        return value
    return _RECIPIENT_VAR.sub(lambda m: str(data.get(m.group(1), "")), value)


def _address(value: str) -> str:
    """Return the bare address of 'Name <a@b>' or 'a@b'."""
    match = re.search(r"<([^>]+)>", value)
    return (match.group(1) if match else value).strip()


class _Fields(dict):
    """Form fields, each value decoded only when read: counting a call of a thousand
    recipients must not cost the decoding of its bodies."""

    def __getitem__(self, key: str) -> list[str]:
        values = super().__getitem__(key)
        if values and isinstance(values[0], bytes):
            values = [unquote_plus(v.decode()) for v in values]
            super().__setitem__(key, values)
        return values

    def get(self, key: str, default=None):
        if key not in self:
            return default
        return self[key]

    def items(self):
        return ((key, self[key]) for key in self)


def _form(content_type: str, body: bytes) -> dict[str, list[str]]:
    if content_type.startswith("multipart/form-data"):
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        fields: dict[str, list[str]] = collections.defaultdict(list)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if part.get_filename():
                continue  # attachments are accepted and not recorded
            fields[name].append(part.get_content())
        return dict(fields)
    lazy = _Fields()
    for pair in body.split(b"&"):
        key, _, value = pair.partition(b"=")
        dict.setdefault(lazy, unquote_plus(key.decode()), []).append(value)
    return lazy


class EspStandin:
    """The server; a context manager that starts it on 127.0.0.1 and a free port."""

    def __init__(self, *, api_key: str = "standin-key", keep: int | None = None) -> None:
        """`keep`: how many received copies to keep whole (None: all); counts are always kept."""
        self.api_key = api_key
        self.keep = keep
        self.delay = 0.0
        self.lock = threading.Lock()
        self.messages: list[Received] = []
        self.calls: list[Call] = []
        self.received_count: collections.Counter[str] = collections.Counter()
        self.accepted_at: list[tuple[float, int]] = []  # (time.monotonic(), recipients)
        self._fail: list[int] = []
        self._refused: dict[str, int] = {}
        self._limited_until = 0.0  # time.monotonic() until which every call gets 429
        self._limit_status = 429
        self._retry_after: str | None = None
        self._drop = 0  # calls to take and then hang up on without an answer
        self._server: ThreadingHTTPServer | None = None

    # --- errors on demand ----------------------------------------------------------------
    def fail_next(self, n: int = 1, status: int = 500) -> None:
        with self.lock:
            self._fail.extend([status] * n)

    def rate_limit(
        self, seconds: float, *, retry_after: str | None = None, status: int = 429
    ) -> None:
        """Answer every call `status` (429) for `seconds` from now, with Retry-After.

        Retry-After is `retry_after` when given (seconds or an HTTP date), else the
        whole seconds left of the limit, as a real ESP counts them.
        """
        with self.lock:
            self._limited_until = time.monotonic() + seconds
            self._retry_after = retry_after
            self._limit_status = status

    def drop_next(self, n: int = 1) -> None:
        """Accept the next n calls (their recipients get the message), then hang up unanswered."""
        with self.lock:
            self._drop += n

    def refuse(self, address: str, status: int = 400) -> None:
        with self.lock:
            self._refused[address.lower()] = status

    # --- what was received ---------------------------------------------------------------
    @property
    def total(self) -> int:
        with self.lock:
            return sum(self.received_count.values())

    def received_by(self, address: str) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if m.to.lower() == address.lower()]

    def reset(self) -> None:
        with self.lock:
            self.messages.clear()
            self.calls.clear()
            self.received_count.clear()
            self.accepted_at.clear()
            self._fail.clear()
            self._refused.clear()
            self._limited_until = 0.0
            self._limit_status = 429
            self._drop = 0

    # --- the server ----------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        assert self._server is not None, "start the stand-in first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v3"

    def start(self) -> EspStandin:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as separate writes; with Nagle's algorithm the
            # body would wait for the client's delayed ACK, 40 ms a call on Linux.
            disable_nagle_algorithm = True

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, answer, *extra = standin._handle(
                    self.path, self.headers.get("Authorization", ""), self.headers, body
                )
                if status is None:  # taken, then the connection drops before the answer
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                payload = json.dumps(answer).encode()
                self.send_response(status)
                for name, value in (extra[0] if extra else {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address) -> None:
                pass  # a client killed mid-request (kill -9 tests) is expected here

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> EspStandin:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- Mailgun's behaviour -------------------------------------------------------------
    def _handle(self, path: str, authorization: str, headers, body: bytes) -> tuple:
        if self.delay:
            time.sleep(self.delay)
        match = _PATH.match(path)
        if not match:
            return 404, {"message": "Not Found"}
        expected = "Basic " + base64.b64encode(f"api:{self.api_key}".encode()).decode()
        if authorization != expected:
            return 401, {"message": "Invalid private key"}
        domain = unquote(match.group("domain"))
        fields = _form(headers.get("Content-Type", ""), body)
        recipients = [_address(v) for value in fields.get("to", []) for v in value.split(",")]
        with self.lock:
            left = self._limited_until - time.monotonic()
            if left > 0:
                self.calls.append(Call(domain, recipients, self._limit_status, fields))
                retry_after = self._retry_after or str(int(left + 0.999))
                return (
                    self._limit_status,
                    {"message": "Too many requests (stand-in rate limit)"},
                    {"Retry-After": retry_after},
                )
            failure = self._fail.pop(0) if self._fail else None
            refused = next(
                (self._refused[r.lower()] for r in recipients if r.lower() in self._refused), None
            )
        status = failure or refused or 200
        with self.lock:
            self.calls.append(Call(domain, recipients, status, fields))
        if failure:
            return failure, {"message": "Internal error (stand-in failure on demand)"}
        if refused:
            return refused, {
                "message": "'to' parameter is not a valid address. please check documentation"
            }
        if not recipients or "from" not in fields:
            return 400, {"message": "'from' and 'to' parameters are missing"}
        message_id = f"<{time.strftime('%Y%m%d%H%M%S')}.{uuid.uuid4().hex[:12]}@{domain}>"
        self._record(domain, fields, recipients, message_id)
        with self.lock:
            if self._drop:
                self._drop -= 1
                return None, {}
        return 200, {"id": message_id, "message": "Queued. Thank you."}

    def _record(self, domain, fields, recipients, message_id) -> None:
        with self.lock:
            self.received_count.update(r.lower() for r in recipients)
            self.accepted_at.append((time.monotonic(), len(recipients)))
            room = None if self.keep is None else max(0, self.keep - len(self.messages))
        if room == 0:
            return
        variables_of = json.loads(fields.get("recipient-variables", ["{}"])[0] or "{}")
        first = lambda name: fields.get(name, [""])[0]  # noqa: E731
        copies = []
        for to in recipients[:room] if room is not None else recipients:
            data = variables_of.get(to, {})
            copies.append(
                Received(
                    to=to,
                    subject=_substitute(first("subject"), data),
                    text=_substitute(first("text"), data),
                    html=_substitute(first("html"), data),
                    headers={
                        k[2:]: _substitute(v[0], data) for k, v in fields.items() if k[:2] == "h:"
                    },
                    variables={
                        k[2:]: _substitute(v[0], data) for k, v in fields.items() if k[:2] == "v:"
                    },
                    tags=fields.get("o:tag", []),
                    message_id=message_id,
                    domain=domain,
                )
            )
        with self.lock:
            self.messages.extend(copies)
