"""One send rate (messages per second) shared by every worker, held in Redis.

The limiter hands out time slots rather than answering yes/no. A worker about to
send n messages reserves the next n / rate seconds of the shared schedule with one
atomic Lua call and sleeps until its slot begins. Slots never overlap, whichever
worker asks, so the rate across all workers is the configured one: at most one
slot ahead of it at any moment (a call of n messages goes out at its slot's start),
and exactly it over any stretch of several slots. The clock is Redis's own (TIME),
so workers on machines whose clocks differ still share one schedule. Nothing is
refused or polled, so the limiter costs one round trip per reservation.

Without Redis (the embedded default) the same schedule is kept in process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

# KEYS[1]: the schedule's next free moment. ARGV[1]: seconds per message, ARGV[2]: n.
# Returns {slot start, now} as strings (Lua numbers would be cut to integers).
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local free = tonumber(redis.call('GET', KEYS[1]) or '0')
if free < now then free = now end
local after = free + tonumber(ARGV[1]) * tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%.6f', after), 'EX', 3600)
return {string.format('%.6f', free), string.format('%.6f', now)}
"""


@dataclass(frozen=True)
class Slot:
    start: float  # on the limiter's clock
    now: float  # the limiter's clock when the slot was reserved

    @property
    def wait(self) -> float:
        return max(0.0, self.start - self.now)


class RedisRateLimiter:
    def __init__(self, url: str, rate: float, key: str = "brw:sendrate") -> None:
        import redis

        self.rate = rate
        self.key = key
        self.client = redis.Redis.from_url(url)
        self.script = self.client.register_script(_RESERVE)

    def reserve(self, n: int) -> Slot:
        start, now = self.script(keys=[self.key], args=[1.0 / self.rate, n])
        return Slot(float(start), float(now))


class LocalRateLimiter:
    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        self.free = 0.0
        self.lock = threading.Lock()

    def reserve(self, n: int) -> Slot:
        with self.lock:
            now = self.clock()
            start = max(self.free, now)
            self.free = start + n / self.rate
        return Slot(start, now)


@lru_cache(maxsize=4)
def _limiter(rate: float, url: str) -> RedisRateLimiter | LocalRateLimiter:
    return RedisRateLimiter(url, rate) if url else LocalRateLimiter(rate)


def send_rate_limiter() -> RedisRateLimiter | LocalRateLimiter | None:
    """Return the shared limiter for NEWSLETTER_SEND_RATE, or None when there is no limit."""
    rate = settings.NEWSLETTER_SEND_RATE
    if not rate:
        return None
    return _limiter(rate, settings.REDIS_CACHE_URL)


def throttle(n: int, *, sleep: Callable[[float], None] = time.sleep) -> float:
    """Wait until `n` messages may go out under the shared rate; return the seconds waited."""
    limiter = send_rate_limiter()
    if limiter is None or n <= 0:
        return 0.0
    wait = limiter.reserve(n).wait
    if wait:
        sleep(wait)
    return wait


def throttle_chunk() -> int:
    """Return how many per-message sends to reserve at once: about 0.1 s of the rate.

    Reserving one message at a time would cost a Redis round trip per message; a
    tenth of a second's worth keeps the rate within a few per cent at any scale.
    """
    rate = settings.NEWSLETTER_SEND_RATE
    return max(1, int(rate / 10)) if rate else 1_000_000
