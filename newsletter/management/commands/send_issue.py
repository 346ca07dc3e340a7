import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from newsletter.management.commands._common import newsletter_from_option
from newsletter.models import Issue
from newsletter.selectors.issues import issue_counts
from newsletter.services.issues import IssueNotSendable, issue_send_test, issue_start_sending


class Command(BaseCommand):
    help = "Send an issue to every active reader (or a [TEST] copy with --test-to)."

    def add_arguments(self, parser):
        parser.add_argument("number", type=int, help="issue number")
        parser.add_argument("--newsletter", help="newsletter slug (default: the site's newsletter)")
        parser.add_argument(
            "--test-to",
            action="append",
            default=[],
            metavar="EMAIL",
            help="send a [TEST] copy only to this address (repeatable)",
        )
        parser.add_argument(
            "--wait",
            action="store_true",
            help="wait until every reader is served, showing progress",
        )
        parser.add_argument(
            "--timeout", type=int, default=3600, help="seconds to wait at most with --wait"
        )

    def handle(
        self,
        *args,
        number: int,
        newsletter: str | None,
        test_to: list[str],
        wait: bool,
        timeout: int,
        **options,
    ):
        target = newsletter_from_option(newsletter)
        issue = Issue.objects.filter(newsletter=target, number=number).first()
        if issue is None:
            raise CommandError(f"{target.name} has no issue No. {number}.")
        if test_to:
            for address in test_to:
                try:
                    validate_email(address)
                except ValidationError:
                    raise CommandError(f"{address!r} is not a valid email address.") from None
            sent = issue_send_test(issue=issue, to=test_to)
            self.stdout.write(
                self.style.SUCCESS(
                    f"Sent {sent} test cop{'y' if sent == 1 else 'ies'} of No. {number}; no reader received it."
                )
            )
            return
        try:
            queued = issue_start_sending(issue=issue)
        except IssueNotSendable as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"No. {number}: {queued} readers queued.")
        if wait:
            self._wait(issue, queued, timeout)

    def _wait(self, issue: Issue, total: int, timeout: int) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while True:
            issue.refresh_from_db()
            counts = issue_counts(issue=issue)
            done = sum(
                counts.get(s, 0) for s in ("sent", "failed", "skipped", "bounced", "complained")
            )
            line = f"  {done}/{total} done · sent {counts.get('sent', 0)} · failed {counts.get('failed', 0)} · skipped {counts.get('skipped', 0)}"
            if line != last:
                self.stdout.write(line)
                last = line
            if issue.status == Issue.Status.SENT:
                self.stdout.write(self.style.SUCCESS(f"No. {issue.number} is sent."))
                return
            if time.monotonic() > deadline:
                raise CommandError(
                    f"Still sending after {timeout}s; the workers go on. Check progress in admin."
                )
            time.sleep(0.5)
