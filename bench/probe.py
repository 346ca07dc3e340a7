"""Loaded into the benchmark's workers only (celery worker -I bench.probe).

Counts the database queries of each send_batch task and writes them, with the
task's wall and CPU time, as one line of bench/out/probe-<pid>.csv, so the
benchmark reports queries per batch and tasks run without touching the engine's
code. A file, not Redis: anything else on the machine that clears the Redis cache
database (a test run's cache.clear()) would wipe counts kept there, and the
harness read 0 queries per batch. The harness stops the workers warmly before it
reads the files, so the last task's line is written (bench/__main__.py Workers.stop).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery.signals import task_postrun, task_prerun
from django.db import connection

OUT = Path(__file__).resolve().parent / "out"
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
        wall, cpu = _state["clock"]
        line = (
            f"{_state['queries']},{time.perf_counter() - wall:.4f},"
            f"{time.process_time() - cpu:.4f},{time.time():.4f}\n"
        )
        with (OUT / f"probe-{os.getpid()}.csv").open("a") as out:
            out.write(line)
    profile = _state.pop("profile", None)
    if profile is not None:
        profile.disable()
        profile.dump_stats(OUT / f"profile-{os.getpid()}-{task_id}.pstats")
