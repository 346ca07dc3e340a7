"""Real worker processes for end-to-end tests over Redis and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from config.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]


def worker_env(**extra: str) -> dict[str, str]:
    """Return the environment for a worker that uses this test run's database."""
    db = connection.settings_dict
    url = f"postgres://{db['USER'] or 'postgres'}{':' + db['PASSWORD'] if db['PASSWORD'] else ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        DATABASE_URL=url,
        REDIS_URL=settings.REDIS_URL,
        CELERY_TASK_ALWAYS_EAGER="false",
        SITE_URL=settings.SITE_URL,
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    env.update(extra)  # may point REDIS_URL elsewhere (a test's own broker)
    return env


class Worker:
    def __init__(self, log: Path, env: dict[str, str], concurrency: int = 1) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--loglevel=INFO",
                f"--concurrency={concurrency}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"e2e-{time.monotonic_ns()}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready." in self.log.read_text(errors="replace"):
                return
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"worker exited:\n{self.log.read_text(errors='replace')[-3000:]}"
                )
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready:\n{self.log.read_text(errors='replace')[-3000:]}")

    def kill(self) -> None:
        """kill -9 the whole worker (main process and pool children)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def start_worker(tmp_path) -> Iterator[Callable[..., Worker]]:
    """Return a function that starts a real Celery worker process; all are stopped after the test."""
    celery_app.control.purge()
    workers: list[Worker] = []

    def start(concurrency: int = 1, **env: str) -> Worker:
        worker = Worker(tmp_path / f"worker-{len(workers)}.log", worker_env(**env), concurrency)
        workers.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in workers:
        worker.stop()
    celery_app.control.purge()


class Beat:
    """A real `celery beat` process: the schedule in settings, run by the workers."""

    def __init__(self, log: Path, env: dict[str, str], schedule: Path) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "--loglevel=INFO",
                f"--schedule={schedule}",
                f"--pidfile={schedule}.pid",
            ],
            cwd=ROOT,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@pytest.fixture
def start_beat(tmp_path) -> Iterator[Callable[..., Beat]]:
    """Return a function that starts `celery beat`; it is stopped after the test."""
    beats: list[Beat] = []

    def start(**env: str) -> Beat:
        n = len(beats)
        beat = Beat(tmp_path / f"beat-{n}.log", worker_env(**env), tmp_path / f"beat-{n}")
        beats.append(beat)
        return beat

    yield start
    for beat in beats:
        beat.stop()


def wait_for(condition: Callable[[], bool], timeout: float = 60, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError("condition not met in time")
