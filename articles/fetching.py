"""Fetch a feed over HTTP(S) without letting a feed URL reach inside our network (SSRF).

A feed URL is typed by an editor and followed by a server that sits next to the
database, Redis and the cloud's metadata service (169.254.169.254, which hands out
credentials). So:

- only http and https, and no proxy from the environment (a proxy would do the
  connecting, past every check below);
- the host is resolved and refused when any of its addresses is loopback, private,
  link-local, multicast, reserved or otherwise not public, and the connection goes to
  the very address that was checked: the check lives in the connection itself
  (urllib3's `_new_conn`), so a DNS answer that changes between check and connect
  (DNS rebinding) changes nothing, and every redirect is checked the same way;
- redirects are followed by hand, at most five, each one http(s) again;
- connect and read timeouts, an overall deadline, and a size cap read as it streams.

requests and urllib3 do the HTTP; only the connection step is ours. (`advocate`, the
library that once did this for requests, is unmaintained and does not support
urllib3 2.)

`FEED_ALLOW_LOOPBACK` is a test-only setting, never read from the environment: the
tests serve feeds from 127.0.0.1 and turn it on to fetch them.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

USER_AGENT = "BeltAndRoadWeekly/1.0 (+feed fetch)"
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 20
DEADLINE_SECONDS = 60
MAX_REDIRECTS = 5
CHUNK = 64 * 1024

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchRefused(Exception):
    """The URL, an address it resolves to, or the response is not one we may take."""


@dataclass(frozen=True)
class Fetched:
    status: int
    url: str  # after redirects
    body: bytes | None  # None when the server answered 304 Not Modified
    etag: str = ""
    last_modified: str = ""


def _why_not_public(address: Address) -> str | None:
    """Return what kind of address this is when it is not a public one, else None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_loopback:
        return None if getattr(settings, "FEED_ALLOW_LOOPBACK", False) else "loopback"
    # Most specific first: Python counts link-local, reserved and 0.0.0.0 as private too.
    for kind in ("unspecified", "link_local", "multicast", "reserved", "private"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    if not address.is_global:
        return "not public"
    return None


def public_addresses(host: str, port: int) -> list[Address]:
    """Return every address `host` resolves to; refuse it if any one is not public.

    One bad address is enough: a name that resolves to a public and a private
    address would otherwise reach the private one on some attempts.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchRefused(f"cannot resolve {host!r} ({exc.strerror})") from None
    addresses: list[Address] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        why = _why_not_public(address)
        if why:
            raise FetchRefused(f"{host} resolves to {address}, a {why} address: refused")
        if address not in addresses:
            addresses.append(address)
    return addresses


class _GuardedConnectionMixin:
    """Connect only to an address just checked to be public (see the module docstring)."""

    def _new_conn(self) -> socket.socket:
        last_error: OSError | None = None
        for address in public_addresses(self._dns_host, self.port):
            try:
                return socket.create_connection((str(address), self.port), self.timeout)
            except OSError as exc:
                last_error = exc
        raise NewConnectionError(self, f"cannot connect to {self.host}: {last_error}")


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass  # TLS still verifies the certificate against the host name


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPPool,
            "https": _GuardedHTTPSPool,
        }


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy, no .netrc: we connect, to checked addresses
    adapter = _GuardedAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchRefused(f"{url!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise FetchRefused(f"{url!r} carries a user name or password")


def fetch_url(
    url: str, *, etag: str = "", last_modified: str = "", max_bytes: int
) -> Fetched:
    """GET `url` (conditionally, with the validators of the last fetch), safely.

    Raise FetchRefused for a URL or address we may not reach, a redirect loop or a
    body over `max_bytes`, and requests.RequestException for network errors; an
    HTTP error status is returned, not raised, so the caller can record it.
    """
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    deadline = time.monotonic() + DEADLINE_SECONDS
    with _session() as session:
        for _hop in range(MAX_REDIRECTS + 1):
            _check_url(url)
            response = session.get(
                url,
                headers=headers,
                timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
                allow_redirects=False,
                stream=True,
            )
            with response:
                if response.is_redirect:
                    url = urljoin(url, response.headers.get("Location", ""))
                    continue
                if response.status_code == 304:
                    return Fetched(status=304, url=url, body=None, etag=etag,
                                   last_modified=last_modified)
                body = _read_capped(response, max_bytes=max_bytes, deadline=deadline)
                return Fetched(
                    status=response.status_code,
                    url=url,
                    body=body,
                    etag=response.headers.get("ETag", "")[:300],
                    last_modified=response.headers.get("Last-Modified", "")[:100],
                )
    raise FetchRefused(f"more than {MAX_REDIRECTS} redirects")


def _read_capped(response: requests.Response, *, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchRefused(f"the feed is {int(declared):,} bytes, over the {max_bytes:,} byte cap")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise FetchRefused(f"the feed is over the {max_bytes:,} byte cap")
        if time.monotonic() > deadline:
            raise FetchRefused(f"the feed took longer than {DEADLINE_SECONDS} s to download")
        chunks.append(chunk)
    return b"".join(chunks)
