"""Loaded into the benchmark's workers only (celery worker -I bench.probe).

Counts the database queries of each task and adds them to Redis, so the benchmark
reports queries per batch and tasks run without touching the engine's code.
"""

from __future__ import annotations

import os
import time

import redis
from celery.signals import task_postrun, task_prerun
from django.db import connection

_client = redis.Redis.from_url(os.environ["REDIS_CACHE_URL"])
_state: dict = {}


def _count(execute, sql, params, many, context):
    _state["queries"] += 1
    return execute(sql, params, many, context)


_PROFILE = os.environ.get("BENCH_PROFILE") == "1"


@task_prerun.connect
def _start(task_id=None, task=None, **kwargs) -> None:
    if _PROFILE:
        import cProfile

        _state["profile"] = cProfile.Profile()
        _state["profile"].enable()
    _state["queries"] = 0
    _state["clock"] = (time.perf_counter(), time.process_time())
    _state["wrapper"] = connection.execute_wrapper(_count)
    _state["wrapper"].__enter__()


@task_postrun.connect
def _stop(task_id=None, task=None, **kwargs) -> None:
    wrapper = _state.pop("wrapper", None)
    if wrapper is not None:
        wrapper.__exit__(None, None, None)
    if task is not None and task.name.endswith("send_batch"):
        _client.rpush("bench:queries", _state["queries"])
        wall, cpu = _state["clock"]
        _client.rpush(
            "bench:tasks",
            f"{time.perf_counter() - wall:.4f},{time.process_time() - cpu:.4f},{time.time():.4f}",
        )
    profile = _state.pop("profile", None)
    if profile is not None:
        profile.disable()
        profile.dump_stats(f"bench/out/profile-{os.getpid()}-{task_id}.pstats")
