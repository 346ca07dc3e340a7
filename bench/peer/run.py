"""Send one django-newsletter submission to N subscribers; print what it cost as JSON.

Run by bench/__main__.py with bench/.peer-venv/bin/python, environment:
PEER_DATABASE_URL, PEER_SMTP_PORT, PEER_TEMPLATES_DIR; argument: N.
django-newsletter sends in one process, one rendering, one EmailMessage and one
SMTP connection per subscriber (Submission.submit -> send_message -> message.send()).
"""

import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["DJANGO_SETTINGS_MODULE"] = "peer_settings"

import django

django.setup()

from django.contrib.sites.models import Site  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from newsletter.models import Message, Newsletter, Submission, Subscription  # noqa: E402


def main(n: int) -> None:
    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE newsletter_submission_subscriptions, newsletter_submission, newsletter_article,"
            " newsletter_message, newsletter_subscription, newsletter_newsletter_site,"
            " newsletter_newsletter RESTART IDENTITY CASCADE"
        )
    Site.objects.update_or_create(pk=1, defaults={"domain": "weekly.example.org", "name": "Weekly"})
    newsletter = Newsletter.objects.create(
        title="Belt & Road Weekly",
        slug="belt-and-road-weekly",
        email="weekly@weekly.example.org",
        sender="Belt & Road Weekly",
        send_html=True,
    )
    newsletter.site.set([1])
    Subscription.objects.bulk_create(
        (
            Subscription(
                newsletter=newsletter, email_field=f"reader{i:06d}@example.com", subscribed=True
            )
            for i in range(n)
        ),
        batch_size=5000,
    )
    message = Message.objects.create(title="No. 1", slug="no-1", newsletter=newsletter)
    submission = Submission.from_message(message)

    queries = [0]

    def count(execute, sql, params, many, context):
        queries[0] += 1
        return execute(sql, params, many, context)

    print(json.dumps({"event": "ready"}), flush=True)
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    with connection.execute_wrapper(count):
        submission.submit()
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "event": "done",
                "n": n,
                "seconds": elapsed,
                "cpu_seconds": (after.ru_utime - before.ru_utime)
                + (after.ru_stime - before.ru_stime),
                "peak_rss_mb": after.ru_maxrss / 1024,
                "queries": queries[0],
                "sent": Submission.objects.get(pk=submission.pk).sent,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main(int(sys.argv[1]))
