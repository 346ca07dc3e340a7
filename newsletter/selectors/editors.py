"""Reads of the newsroom's editors."""

from __future__ import annotations

from django.contrib.auth import get_user_model

EDITORS_GROUP = "Editors"


def editor_addresses() -> list[str]:
    """Return the email addresses of the active members of the Editors group, once each."""
    emails = (
        get_user_model()
        .objects.filter(groups__name=EDITORS_GROUP, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    unique: dict[str, str] = {}
    for email in emails:
        unique.setdefault(email.lower(), email)
    return sorted(unique.values(), key=str.lower)
