"""The send pipeline, in the order things happen.

1. fanout.py    "Send now" (services/issues.py) -> one queued Delivery row per eligible
                reader in one INSERT … SELECT, cut into keyset ranges, one task each,
                every enqueue recorded (the only module that enqueues a send task)
2. batch.py     one range's task runs the steps below in order (tasks.send_batch)
3. claim.py     take the range's rows with a lease (SKIP LOCKED), keep it alive while
                working, hand rows back; a dead worker's rows are claimed again
4. render.py    re-check each reader, pick their variant (language x sections), render
                each variant once per worker process (keyed by a fingerprint)
5. ways_out/    one interface, `send(variant, recipients) -> one Outcome per recipient`:
                esp.py (a whole variant per API call), smtp.py (MIME serialised once,
                tokens per reader), per_message.py (any other backend)
6. ledger.py    every row's outcome in one UPDATE, the issue's counters, possible
                duplicates; the issue is marked sent once no row waits
7. retry.py     THE decision after a failure: wait out a rate limit, retry, or give up

Beside them: journal.py (what each claim already handed to the backend, so a crash
re-sends at most one call), dispatch.py (dispatch records and beat's watchdog for lost
ranges), ratelimit.py (one shared messages-per-second schedule), errors.py (what a
failure says), messages.py (the digest message of one reader, or of one ESP batch),
mailgun.py (anymail's Mailgun backend, its body encoded once per batch).

Decisions, written down:

- Batch path: Mailgun, SendGrid, SparkPost and Mailjet, the anymail backends that take
  inline content with per-recipient merge fields, merge_headers and merge_metadata
  (ways_out/esp.py has the table and the per-call limits: 1,000, 1,000, 1,000 (our cap), 50).
  Amazon SES and Postmark need a stored template for merge_data; Resend, MailerSend and
  Brevo have no merge fields for inline content. They, and SMTP, go per message.
- Duplicate window: at most the one ESP call (or SMTP message) in flight per
  interrupted worker; NEWSLETTER_ESP_BATCH_LIMIT sets its size. After each
  call its accepted rows are noted in the send journal (one Redis HSET, no query); the
  ledger is settled in one UPDATE at the end of the batch. A worker killed between a
  call and that UPDATE leaves its rows leased; whoever claims them next reads the
  journal and settles the noted ones as sent. Only a call that the ESP accepted but
  whose note was not yet written (a kill in the microseconds between) is sent again.
  Every call whose fate is unknown (a read timeout, a connection dropped after the
  request went out, a dead claim's rows missing from its journal) is recorded as an
  InterruptedCall with its recipients: the report's "possible duplicates".
- Lease and heartbeat: a claim leases its rows for NEWSLETTER_LEASE_SECONDS (60 s,
  below CELERY_VISIBILITY_TIMEOUT, which settings check), and a thread renews the
  lease every third of it while the batch works, so a slow batch keeps its rows and
  a dead worker's are free within a minute. Its task message stays unacknowledged on
  Redis for the visibility timeout (an hour); nobody waits for that.
- Dispatch records and the watchdog: the broker is transport, not the record of work.
  Every enqueue of a range (fan-out, retry, watchdog) is a BatchDispatch row
  (dispatched, due, claimed, done). Beat's watchdog, every NEWSLETTER_WATCH_SECONDS
  (30 s), enqueues again ranges with rows whose lease ran out and ranges due for more
  than NEWSLETTER_DISPATCH_GRACE_SECONDS (60 s) but never claimed, unless the broker's
  queue still holds as many tasks (a backlog is not a loss). A range enqueued twice
  costs one empty claim.
- Retries, decided in retry.py only: a rate limit (429, or 503 with Retry-After)
  pauses every worker until the Retry-After (seconds or HTTP date) has passed and
  halves the shared rate; the rows go back to the queue with their attempt given
  back, and the range comes back in hops below the visibility timeout until the pause
  is over, or until NEWSLETTER_GIVE_UP_AFTER (24 h from the send's start or "Retry
  failed") is spent, when the rows fail with the reason. Other transient errors
  requeue the unsent rows and retry the range with exponential backoff and jitter,
  every delay below the visibility timeout; after NEWSLETTER_MAX_ATTEMPTS the rows
  fail with the reason. A refused recipient fails alone: an ESP 4xx for a call is
  bisected down to the one address. A database error (OperationalError,
  InterfaceError) closes the broken connection, hands the claimed rows back at once
  (sent ones keep their journal note) and retries the task within the same backoff.
- Finishing: an issue is marked sent only when none of its rows is queued or sending,
  so never while a row waits out a rate limit. "Retry failed" (Publishers) puts only
  the failed rows back in the queue and sends them as new ranges.
- Rate: NEWSLETTER_SEND_RATE messages/s across all workers, reserved as back-to-back
  time slots on one Redis schedule (Redis's clock): never above the rate by more
  than one call's messages, and equal to it over any stretch of several calls. After
  a 429 it halves (to at most a sixteenth) and climbs back by half per batch sent
  without one. Keep batch size / rate well under the visibility timeout even halved.
"""
