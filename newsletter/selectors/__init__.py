"""Reads, one module per subject as in services/ (writes).

- issues.py: who a send would reach, its progress, the preview and size of a digest,
  its failures;
- subscribers.py: a reader's consent, sections offered, lookups by address, their data
  download (this app's part), counts per status;
- metrics.py: the results of each issue and the list's health (rates, complaint
  levels, leaving reasons), read by the admin's report pages;
- editors.py: the newsroom's editors; newsletters.py: the newsletter the site serves.
"""
