"""One send rate (messages per second) shared by every worker, held in Redis.

The limiter hands out time slots rather than answering yes/no. A worker about to
send n messages reserves the next n / rate seconds of the shared schedule with one
atomic Lua call and sleeps until its slot begins. Slots never overlap, whichever
worker asks, so the rate across all workers is the configured one: at most one
slot ahead of it at any moment (a call of n messages goes out at its slot's start),
and exactly it over any stretch of several slots. The clock is Redis's own (TIME),
so workers on machines whose clocks differ still share one schedule. Nothing is
refused or polled, so the limiter costs one round trip per reservation.

An ESP's rate limit (429) slows every worker, not just the one that got it: the
worker that got it pauses the shared schedule until the Retry-After has passed, and
halves the rate (down to a sixteenth of NEWSLETTER_SEND_RATE); each batch that
then goes through without one climbs it back by half again (AIMD, as TCP does). A
worker asking for a slot while the pause has more than a few seconds to run gets
SendPaused instead of sleeping through it inside its task; its batch goes back to
the queue to come back when the pause ends (retry.py). Without NEWSLETTER_SEND_RATE
there is no rate to halve, and the pause alone holds everyone back.

Without Redis (the embedded default) the same schedule is kept in process; a Redis
that does not answer mid-send falls back to it rather than failing the batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

from newsletter.sending.errors import SendPaused

logger = logging.getLogger(__name__)

# Longest pause a worker sleeps through inside its task; longer ones requeue the batch.
PAUSE_SLEEP_MAX = 5.0
MIN_FACTOR = 1 / 16  # the rate never halves below a sixteenth of NEWSLETTER_SEND_RATE
RECOVER_STEP = 1.5  # each batch sent without a 429 climbs the rate back by half again

_FMT = "string.format('%.6f', {})"
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""
# KEYS: schedule's next free moment, pause end, rate factor. ARGV: seconds per message
# at full rate, n, longest pause to sleep through. Returns {slot start, now, paused}
# as strings (Lua numbers would be cut to integers).
_RESERVE = (
    _NOW
    + f"""
local pause = tonumber(redis.call('GET', KEYS[2]) or '0')
if pause - now > tonumber(ARGV[3]) then
  return {{{_FMT.format("pause")}, {_FMT.format("now")}, '1'}}
end
local free = tonumber(redis.call('GET', KEYS[1]) or '0')
if free < now then free = now end
if free < pause then free = pause end
local spm = tonumber(ARGV[1])
if spm > 0 then
  local factor = tonumber(redis.call('GET', KEYS[3]) or '1')
  local after = free + spm * tonumber(ARGV[2]) / factor
  redis.call('SET', KEYS[1], {_FMT.format("after")}, 'EX', 3600)
end
return {{{_FMT.format("free")}, {_FMT.format("now")}, '0'}}
"""
)
# KEYS: pause end, rate factor. ARGV: seconds to pause, lowest factor. Returns the factor.
_BACK_OFF = (
    _NOW
    + f"""
local untl = now + tonumber(ARGV[1])
local pause = tonumber(redis.call('GET', KEYS[1]) or '0')
if untl > pause then
  redis.call('SET', KEYS[1], {_FMT.format("untl")}, 'EX', math.ceil(tonumber(ARGV[1])) + 60)
end
local factor = tonumber(redis.call('GET', KEYS[2]) or '1') / 2
if factor < tonumber(ARGV[2]) then factor = tonumber(ARGV[2]) end
redis.call('SET', KEYS[2], {_FMT.format("factor")}, 'EX', 86400)
return {_FMT.format("factor")}
"""
)
# KEYS: rate factor. ARGV: step. Returns the factor.
_RECOVER = f"""
local factor = redis.call('GET', KEYS[1])
if not factor then return '1' end
factor = tonumber(factor) * tonumber(ARGV[1])
if factor >= 1 then redis.call('DEL', KEYS[1]) return '1' end
redis.call('SET', KEYS[1], {_FMT.format("factor")}, 'EX', 86400)
return {_FMT.format("factor")}
"""
# KEYS: pause end. Returns the seconds it still has to run (0 or less: none).
_PAUSED = (
    _NOW
    + f"""
local pause = tonumber(redis.call('GET', KEYS[1]) or '0')
return {_FMT.format("pause - now")}
"""
)


@dataclass(frozen=True)
class Slot:
    start: float  # on the limiter's clock
    now: float  # the limiter's clock when the slot was reserved
    paused: bool = False  # nothing reserved: a pause longer than the caller sleeps through

    @property
    def wait(self) -> float:
        return max(0.0, self.start - self.now)


class RedisRateLimiter:
    def __init__(self, url: str, rate: float, key: str = "brw:sendrate") -> None:
        import redis

        self.rate = rate
        self.keys = [key, f"{key}:pause", f"{key}:factor"]
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.script = self.client.register_script(_RESERVE)
        self.back_off_script = self.client.register_script(_BACK_OFF)
        self.recover_script = self.client.register_script(_RECOVER)
        self.paused_script = self.client.register_script(_PAUSED)

    def reserve(self, n: int, *, max_pause: float = float("inf")) -> Slot:
        spm = 1.0 / self.rate if self.rate else 0.0
        limit = min(max_pause, 1e12)  # Lua's tonumber takes no "inf"
        start, now, paused = self.script(keys=self.keys, args=[spm, n, f"{limit:.6f}"])
        return Slot(float(start), float(now), paused == b"1")

    def back_off(self, seconds: float) -> float:
        return float(self.back_off_script(keys=self.keys[1:], args=[seconds, MIN_FACTOR]))

    def recover(self) -> float:
        return float(self.recover_script(keys=self.keys[2:], args=[RECOVER_STEP]))

    def paused_for(self) -> float:
        return max(0.0, float(self.paused_script(keys=self.keys[1:2])))


class LocalRateLimiter:
    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        self.free = 0.0
        self.pause = 0.0
        self.factor = 1.0
        self.lock = threading.Lock()

    def reserve(self, n: int, *, max_pause: float = float("inf")) -> Slot:
        with self.lock:
            now = self.clock()
            if self.pause - now > max_pause:
                return Slot(self.pause, now, paused=True)
            start = max(self.free, now, self.pause)
            if self.rate:
                self.free = start + n / self.rate / self.factor
        return Slot(start, now)

    def back_off(self, seconds: float) -> float:
        with self.lock:
            self.pause = max(self.pause, self.clock() + seconds)
            self.factor = max(self.factor / 2, MIN_FACTOR)
            return self.factor

    def recover(self) -> float:
        with self.lock:
            self.factor = min(1.0, self.factor * RECOVER_STEP)
            return self.factor

    def paused_for(self) -> float:
        with self.lock:
            return max(0.0, self.pause - self.clock())


@lru_cache(maxsize=4)
def _limiter(rate: float, url: str) -> RedisRateLimiter | LocalRateLimiter:
    return RedisRateLimiter(url, rate) if url else LocalRateLimiter(rate)


@lru_cache(maxsize=4)
def _fallback(rate: float) -> LocalRateLimiter:
    return LocalRateLimiter(rate)


def send_rate_limiter() -> RedisRateLimiter | LocalRateLimiter:
    """Return the shared limiter: NEWSLETTER_SEND_RATE (0: no rate) and any ESP pause."""
    return _limiter(settings.NEWSLETTER_SEND_RATE, settings.REDIS_CACHE_URL)


def send_rate_reset() -> None:
    """Forget the schedule, the pause and the rate factor, shared and in process.

    For tests, which each start from nothing, and for an operator who knows the
    ESP's limit has lifted early (manage.py shell).
    """
    limiter = send_rate_limiter()
    if isinstance(limiter, RedisRateLimiter):
        limiter.client.delete(*limiter.keys)
    _limiter.cache_clear()
    _fallback.cache_clear()


def _shared(operation: str, *args, **kwargs):
    """Run `operation` on the shared limiter; if Redis does not answer, on this process's."""
    limiter = send_rate_limiter()
    try:
        return getattr(limiter, operation)(*args, **kwargs)
    except Exception as exc:
        if isinstance(limiter, LocalRateLimiter):
            raise
        logger.warning("send rate limiter: Redis did not answer (%s); limiting in process", exc)
        return getattr(_fallback(settings.NEWSLETTER_SEND_RATE), operation)(*args, **kwargs)


def throttle(n: int, *, sleep: Callable[[float], None] = time.sleep) -> float:
    """Wait until `n` messages may go out under the shared rate; return the seconds waited.

    Raises SendPaused when an ESP's rate limit pauses every worker for longer than
    PAUSE_SLEEP_MAX: the caller's batch goes back to the queue instead of sleeping.
    """
    if n <= 0:
        return 0.0
    slot = _shared("reserve", n, max_pause=PAUSE_SLEEP_MAX)
    if slot.paused:
        raise SendPaused(slot.wait)
    wait = slot.wait
    if wait:
        sleep(wait)
    return wait


def rate_limit_hit(seconds: float) -> None:
    """Pause every worker for `seconds` and halve the shared rate: the ESP said 429."""
    factor = _shared("back_off", seconds)
    logger.warning(
        "ESP rate limit: every worker pauses %.0f s, rate at %.3g of the set rate", seconds, factor
    )


def rate_limit_eased() -> None:
    """Climb the shared rate back after a batch that went through without a rate limit."""
    _shared("recover")


def paused_for() -> float:
    """Return the seconds every worker still waits for an ESP's rate limit (0: none)."""
    return _shared("paused_for")


def throttle_chunk() -> int:
    """Return how many per-message sends to reserve at once: about 0.1 s of the rate.

    Reserving one message at a time would cost a Redis round trip per message; a
    tenth of a second's worth keeps the rate within a few per cent at any scale.
    """
    rate = settings.NEWSLETTER_SEND_RATE
    return max(1, int(rate / 10)) if rate else 1_000_000
