"""A write-ahead note of what each claim has already handed to the email backend.

The ledger is settled in one UPDATE at the end of a batch, so that queries per batch
stay constant however many ESP calls or SMTP messages it makes. A worker killed
between a send and that UPDATE would leave rows in `sending` that the next claimer
sends again. To keep that window to the one call in flight, each call's accepted
recipients are noted in the cache (Redis in production) right after the call
returns — one round trip per call, no database query — keyed by the claim token and
the row. The next claimer of an expired lease reads the notes of the dead claim and
settles those rows as sent instead of sending them again.

The notes outlive the lease and the broker's visibility timeout, then expire on
their own; a batch that settles normally deletes its notes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)


def _key(token: uuid.UUID | str, delivery_id: int) -> str:
    return f"sendjournal:{token}:{delivery_id}"


def _ttl() -> int:
    return settings.NEWSLETTER_LEASE_SECONDS + settings.CELERY_VISIBILITY_TIMEOUT


def journal_note(token: uuid.UUID, accepted: Mapping[int, str]) -> None:
    """Note that the backend accepted these rows: {delivery id: ESP message id}.

    A cache that does not answer is logged, not raised: the send itself succeeded,
    and the batch still settles these rows from memory when it finishes.
    """
    if not accepted:
        return
    try:
        cache.set_many({_key(token, pk): mid for pk, mid in accepted.items()}, timeout=_ttl())
    except Exception:
        logger.exception("send journal: could not note %s rows of claim %s", len(accepted), token)


def journal_recover(claims: Iterable[tuple[int, uuid.UUID | str]]) -> dict[int, str]:
    """Return {delivery id: message id} for rows an earlier claim already sent.

    `claims` pairs each row with the claim token it carried before this claim.
    """
    keys = {_key(token, pk): pk for pk, token in claims if token}
    if not keys:
        return {}
    try:
        found = cache.get_many(list(keys))
    except Exception:
        logger.exception("send journal: could not read %s notes", len(keys))
        return {}
    return {keys[key]: str(mid) for key, mid in found.items()}


def journal_forget(token: uuid.UUID, delivery_ids: Iterable[int]) -> None:
    """Drop the notes of a claim whose rows are settled in the ledger."""
    keys = [_key(token, pk) for pk in delivery_ids]
    if not keys:
        return
    try:
        cache.delete_many(keys)
    except Exception:
        logger.warning("send journal: could not drop %s notes of claim %s", len(keys), token)
