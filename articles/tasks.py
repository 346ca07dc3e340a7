"""Celery tasks of the article store: thin, each calls one service."""

from __future__ import annotations

import logging

from celery import shared_task

from articles.models import FeedSource
from articles.services import feed_source_fetch

logger = logging.getLogger(__name__)


@shared_task
def fetch_feeds() -> None:
    """Fetch every active feed source, one task each (beat, every FEED_FETCH_INTERVAL_MINUTES)."""
    for source_id in FeedSource.objects.filter(is_active=True).values_list("pk", flat=True):
        fetch_feed.delay(source_id)


@shared_task
def fetch_feed(source_id: int) -> None:
    """Fetch one feed source and record the fetch (errors are recorded, not raised)."""
    source = FeedSource.objects.filter(pk=source_id).select_related("default_category").first()
    if source is None:
        return
    fetch = feed_source_fetch(source=source)
    logger.info(
        "feed %s: status %s, %s new, %s updated, %s refused%s",
        source.name,
        fetch.status,
        fetch.new,
        fetch.updated,
        fetch.refused,
        f", error: {fetch.error}" if fetch.error else "",
    )
