"""Django admin, one module per area: the newsletter, issues (and their pages), readers, the ledger."""

from newsletter.admin import (  # noqa: F401 - registers the ModelAdmins
    issues,
    jobs,
    ledger,
    newsletters,
    readers,
)
