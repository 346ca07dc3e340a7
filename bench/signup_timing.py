"""Median signup time per address state: the "check your inbox" page must not time an address.

    python -m bench.signup_timing                  # 300 tries per state, SQLite in a temp dir
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/brw_signup python -m bench.signup_timing

Each try is a full POST of the subscription form through Django's stack (middleware,
CSRF off, form validation, abuse screening, the service) with Celery publishing to an
in-memory broker instead of running the task, as a production web process publishes to
Redis and returns. States are tried in turn, round after round, so drift (a warming
cache, another process on the machine) falls on every state alike. Target: every
median within 10 % of the others. Prints one table; exits 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_tmp = tempfile.mkdtemp(prefix="brw-signup-")
os.environ.update(
    DJANGO_SETTINGS_MODULE="config.settings",
    DATABASE_URL=os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{_tmp}/db.sqlite3"),
    CELERY_TASK_ALWAYS_EAGER="false",  # publish only: the web process's share of the work
    VAR_DIR=_tmp,
    LOG_LEVEL="ERROR",
    NEWSLETTER_IP_SOFT_LIMIT="1000000",
    NEWSLETTER_IP_HARD_LIMIT="2000000",
    NEWSLETTER_ADDRESS_LIMIT="1000000",
)
os.environ.pop("REDIS_URL", None)
sys.path.insert(0, str(ROOT))

STATES = ("new", "pending", "active", "unsubscribed", "bounced", "complained", "erased")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tries", type=int, default=300, help="POSTs per state (default 300)")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    call_command("migrate", verbosity=0, interactive=False)
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from newsletter.abuse import form_stamp
    from newsletter.models import Subscriber
    from newsletter.selectors.newsletters import newsletter_default
    from newsletter.selectors.subscribers import consent_text_current
    from newsletter.suppression import suppress

    newsletter = newsletter_default()
    consent = consent_text_current(newsletter=newsletter)
    Subscriber.objects.filter(newsletter=newsletter).delete()
    for state in STATES[1:-1]:
        Subscriber.objects.create(
            newsletter=newsletter, email=f"{state}@example.com", status=state, name="Reader"
        )
    suppress(newsletter=newsletter, email="erased@example.com", reason="erased")
    with time_machine.travel(timezone.now() - timedelta(seconds=60), tick=False):
        stamp = form_stamp()

    client = Client()
    timings: dict[str, list[float]] = {state: [] for state in STATES}
    for round_no in range(args.tries + 5):
        for state in STATES:
            email = f"new{round_no}@example.com" if state == "new" else f"{state}@example.com"
            data = {
                "email": email,
                "name": "Li Wei",
                "organisation": "Silk Road Bank",
                "country": "CN",
                "consent": "on",
                "consent_version": str(consent.version),
                "stamp": stamp,
                "website": "",
            }
            started = time.perf_counter()
            response = client.post("/newsletter/subscribe/", data, REMOTE_ADDR="192.0.2.1")
            elapsed = time.perf_counter() - started
            if response.status_code != 200 or b"Check your inbox" not in response.content:
                print(f"{state}: unexpected answer {response.status_code}", file=sys.stderr)
                return 2
            if round_no >= 5:  # the first rounds warm caches and imports
                timings[state].append(elapsed * 1000)

    medians = {state: statistics.median(values) for state, values in timings.items()}
    low, high = min(medians.values()), max(medians.values())
    spread = (high - low) / low * 100
    engine = django.db.connection.vendor
    print(f"signup POST, {args.tries} tries per state, {engine}, publish-only Celery")
    print(f"{'state':<14}{'median ms':>10}{'p90 ms':>9}{'vs fastest':>12}")
    for state in STATES:
        p90 = statistics.quantiles(timings[state], n=10)[-1]
        print(f"{state:<14}{medians[state]:>10.2f}{p90:>9.2f}{(medians[state] / low - 1) * 100:>11.1f}%")
    verdict = "within" if spread <= 10 else "OUTSIDE"
    print(f"spread of medians: {spread:.1f} % ({verdict} the 10 % target)")
    return 0 if spread <= 10 else 1


if __name__ == "__main__":
    sys.exit(main())
