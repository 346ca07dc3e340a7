"""Django admin, one module per area: readers, issues and the ledger."""

from newsletter.admin import issues, jobs, ledger, readers  # noqa: F401 - registers the ModelAdmins
