"""The send pipeline: snapshot readers into the Delivery ledger, fan out batches, send.

snapshot.py   issue -> Delivery rows in one set-based statement, then keyset ranges
batch.py      one range: claim rows, re-check readers, render per variant, send, settle
esp.py        the ESP batch path: one anymail call per variant (merge_data, merge_headers)
transport.py  the per-message path: SMTP from bytes serialised once, or any backend
journal.py    what each claim handed to the backend, so a crash re-sends only one call
ratelimit.py  one messages-per-second schedule shared by every worker through Redis
errors.py     which failures are transient (retry) and which permanent (fail the row)

Decisions, written down:

- Batch path: Mailgun, SendGrid, SparkPost and Mailjet, the anymail backends that take
  inline content with per-recipient merge fields, merge_headers and merge_metadata
  (esp.py has the table and the per-call limits: 1,000, 1,000, 1,000 (our cap), 50).
  Amazon SES and Postmark need a stored template for merge_data; Resend, MailerSend and
  Brevo have no merge fields for inline content. They, and SMTP, go per message.
- Duplicate window: at most the one ESP call (or SMTP message) in flight. After each
  call its accepted rows are noted in the send journal (one Redis HSET, no query); the
  ledger is settled in one UPDATE at the end of the batch. A worker killed between a
  call and that UPDATE leaves its rows leased; whoever claims them next reads the
  journal and settles the noted ones as sent. Only a call that the ESP accepted but
  whose note was not yet written (a kill in the microseconds between) is sent again.
- Lease and reclaim: a claim leases its rows for NEWSLETTER_LEASE_SECONDS (900 s, and
  below CELERY_VISIBILITY_TIMEOUT, which settings check). A redelivered task
  (acks_late, reject_on_worker_lost) finds the rows leased and comes back when the
  lease ends; beat's reclaim_expired_leases re-enqueues expired leases and queued rows
  whose task was lost. A batch must finish within its lease: at a throttled rate
  below batch size / lease (500 / 900 s ≈ 0.56 messages/s) lower the batch size.
- Retries: transient errors requeue the unsent rows and retry the range with
  exponential backoff and jitter, every delay below the visibility timeout; after
  NEWSLETTER_MAX_ATTEMPTS the rows fail with the reason. A refused recipient fails
  alone: an ESP 4xx for a call is bisected down to the one address.
- Rate: NEWSLETTER_SEND_RATE messages/s across all workers, reserved as back-to-back
  time slots on one Redis schedule (Redis's clock): never above the rate by more
  than one call's messages, and equal to it over any stretch of several calls.
"""
