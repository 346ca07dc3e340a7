"""The send pipeline: snapshot readers into the Delivery ledger, fan out batches, send.

snapshot.py   issue -> Delivery rows in one set-based statement, then keyset ranges
batch.py      one range: claim rows, re-check readers, render per variant, send, mark
transport.py  how a batch reaches the email backend (one connection, per message)
errors.py     which failures are transient (retry) and which permanent (fail the row)
"""
