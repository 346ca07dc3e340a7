"""Stand-ins for the far side of sending, which this machine cannot reach.

esp.py   a local HTTP server speaking Mailgun's documented sending API
smtp.py  an aiosmtpd SMTP sink

Both record what they receive and answer errors on demand; tests and the benchmark
(bench/) use them.
"""
