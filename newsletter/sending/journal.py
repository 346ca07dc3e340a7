"""A write-ahead note of what each claim has already handed to the email backend.

The ledger is settled in one UPDATE at the end of a batch, so that queries per batch
stay constant however many ESP calls or SMTP messages it makes. A worker killed
between a send and that UPDATE would leave rows in `sending` that the next claimer
sends again. To keep that window to the one call in flight, each call's accepted
recipients are noted in Redis right after the call returns — one round trip per
call, no database query — keyed by the claim token and the row. The next claimer of an expired lease reads the notes of the dead claim and
settles those rows as sent instead of sending them again.

With Redis, a claim's notes are one hash (brw:sendjournal:<claim token>); they
outlive the lease and the broker's visibility timeout, then expire on their own, and
a batch that settles normally deletes them.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)


def _ttl() -> int:
    return settings.NEWSLETTER_LEASE_SECONDS + settings.CELERY_VISIBILITY_TIMEOUT


@lru_cache(maxsize=2)
def _redis(url: str):
    import redis

    return redis.Redis.from_url(url)


class _RedisJournal:
    """One hash per claim, {row id: message id}: a note is one HSET, a recovery one HMGET.

    Talks to Redis directly: Django's cache API would cost a pipeline (and its set-up)
    per note, several times the price of the send it records.
    """

    # Claims of this process whose hash already has its expiry: set once, not per note.
    expiring: set[str] = set()

    def __init__(self, url: str) -> None:
        self.client = _redis(url)

    def _expire_once(self, key: str) -> None:
        if key not in self.expiring:
            self.client.expire(key, _ttl())
            if len(self.expiring) > 10_000:
                self.expiring.clear()
            self.expiring.add(key)

    @staticmethod
    def key(token) -> str:
        return f"brw:sendjournal:{token}"

    def note(self, token, accepted: Mapping[int, str]) -> None:
        key = self.key(token)
        self.client.hset(key, mapping={str(pk): mid for pk, mid in accepted.items()})
        self._expire_once(key)

    def recover(self, by_token: dict) -> dict[int, str]:
        found: dict[int, str] = {}
        for token, pks in by_token.items():
            values = self.client.hmget(self.key(token), [str(pk) for pk in pks])
            found.update(
                {pk: v.decode() for pk, v in zip(pks, values, strict=True) if v is not None}
            )
        return found

    def forget(self, token, pks: list[int]) -> None:
        self.client.delete(self.key(token))
        self.expiring.discard(self.key(token))


class _CacheJournal:
    """The same notes in Django's cache, for the embedded default (no Redis)."""

    @staticmethod
    def key(token, pk: int) -> str:
        return f"sendjournal:{token}:{pk}"

    def note(self, token, accepted: Mapping[int, str]) -> None:
        cache.set_many({self.key(token, pk): mid for pk, mid in accepted.items()}, timeout=_ttl())

    def recover(self, by_token: dict) -> dict[int, str]:
        keys = {self.key(token, pk): pk for token, pks in by_token.items() for pk in pks}
        return {keys[k]: str(v) for k, v in cache.get_many(list(keys)).items()}

    def forget(self, token, pks: list[int]) -> None:
        cache.delete_many([self.key(token, pk) for pk in pks])


def _journal() -> _RedisJournal | _CacheJournal:
    url = settings.REDIS_CACHE_URL
    return _RedisJournal(url) if url else _CacheJournal()


def journal_note(token: uuid.UUID, accepted: Mapping[int, str]) -> None:
    """Note that the backend accepted these rows: {delivery id: ESP message id}.

    A journal that does not answer is logged, not raised: the send itself succeeded,
    and the batch still settles these rows from memory when it finishes.
    """
    if not accepted:
        return
    try:
        _journal().note(token, accepted)
    except Exception:
        logger.exception("send journal: could not note %s rows of claim %s", len(accepted), token)


def journal_recover(claims: Iterable[tuple[int, uuid.UUID | str | None]]) -> dict[int, str]:
    """Return {delivery id: message id} for rows an earlier claim already sent.

    `claims` pairs each row with the claim token it carried before this claim.
    """
    by_token: dict = defaultdict(list)
    for pk, token in claims:
        if token:
            by_token[token].append(pk)
    if not by_token:
        return {}
    try:
        return _journal().recover(by_token)
    except Exception:
        logger.exception("send journal: could not read the notes of %s claims", len(by_token))
        return {}


def journal_forget(token: uuid.UUID, delivery_ids: Iterable[int]) -> None:
    """Drop the notes of a claim whose rows are settled in the ledger."""
    pks = list(delivery_ids)
    if not pks:
        return
    try:
        _journal().forget(token, pks)
    except Exception:
        logger.warning("send journal: could not drop the notes of claim %s", token)
