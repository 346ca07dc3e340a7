"""A reader's personal data across every app that holds some: erasure and the data download.

See privacy/services.py; it sits above newsletter and inbox so neither app imports the other.
"""
