"""The issue page's items: labelled flags, the article's own abstract to edit, positions as shown."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from newsletter.models import IssueItem
from tests.factories import (
    ArticleFactory,
    IssueFactory,
    IssueItemFactory,
    StaffUserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def interleaved_issue(finance, energy):
    """Four stories, Energy and Finance in turn: a draft whose items are not in display order."""
    issue = IssueFactory(number=5)
    # Created out of display order, the way a compile ranks across sections.
    for position, (title, section) in enumerate(
        [
            ("Energy one", energy),
            ("Finance one", finance),
            ("Energy two", energy),
            ("Finance two", finance),
        ],
        start=1,
    ):
        IssueItemFactory(
            issue=issue,
            article=ArticleFactory(
                title=title, category=section, abstract=f"{title}: the portal's abstract."
            ),
            position=position,
        )
    return issue


@pytest.fixture
def editor(client):
    client.force_login(StaffUserFactory(username="amina", groups=["Editors"]))


def page_of(client, issue) -> str:
    return client.get(reverse("admin:newsletter_issue_change", args=[issue.pk])).content.decode()


def formset_data(page: str) -> dict[str, str]:
    """Return the page's form as a browser would post it, unchanged."""
    data = dict(
        re.findall(r'<input type="(?:hidden|number|text)" name="([^"]+)" value="([^"]*)"', page)
    )
    for name, options in re.findall(r'<select name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', options)
        data[name] = chosen.group(1) if chosen else ""
    for name, value in re.findall(r'<textarea name="([^"]+)"[^>]*>\n?([^<]*)</textarea>', page):
        data[name] = value.replace("&#x27;", "'")
    for name in re.findall(r'<input type="checkbox" name="([^"]+)"[^>]*checked', page):
        data[name] = "on"
    data["_continue"] = "1"
    return data


def test_pinned_and_removed_say_what_they_are_on_every_row(client, editor, interleaved_issue):
    page = page_of(client, interleaved_issue)
    assert (
        len(
            re.findall(
                r'<label class="issue-flag"><input type="checkbox" name="items-\d-pinned"[^>]*> <span>Pinned</span></label>',
                page,
            )
        )
        == 4
    )
    assert (
        len(
            re.findall(
                r'<label class="issue-flag"><input type="checkbox" name="items-\d-removed"[^>]*> <span>Removed</span></label>',
                page,
            )
        )
        == 4
    )


def test_the_abstract_box_holds_the_articles_own_abstract_and_saving_it_unchanged_overrides_nothing(
    client, editor, interleaved_issue
):
    page = page_of(client, interleaved_issue)
    assert "Finance one: the portal&#x27;s abstract." in page
    data = formset_data(page)
    assert (
        client.post(
            reverse("admin:newsletter_issue_change", args=[interleaved_issue.pk]), data
        ).status_code
        == 302
    )
    assert not IssueItem.objects.exclude(abstract_override="").exists()
    # Edited, it becomes this issue's abstract.
    box = next(k for k, v in data.items() if v.startswith("Energy two"))
    data[box] = "Rewritten for this week."
    client.post(reverse("admin:newsletter_issue_change", args=[interleaved_issue.pk]), data)
    item = IssueItem.objects.get(abstract_override__gt="")
    assert (item.article.title, item.abstract) == ("Energy two", "Rewritten for this week.")


def test_positions_read_top_to_bottom_after_a_save(client, editor, interleaved_issue):
    data = formset_data(page_of(client, interleaved_issue))
    # Move "Finance two" above "Finance one" by typing a smaller number, as an editor would.
    row = next(k for k, v in data.items() if v.startswith("Finance two")).split("-abstract")[0]
    data[f"{row}-position"] = "0"
    client.post(reverse("admin:newsletter_issue_change", args=[interleaved_issue.pk]), data)
    page = page_of(client, interleaved_issue)
    titles = re.findall(r"<textarea name=\"items-\d-abstract_override\"[^>]*>\n?(\w+ \w+):", page)
    positions = [int(p) for p in re.findall(r'name="items-\d-position" value="(\d+)"', page)]
    assert titles == ["Finance two", "Finance one", "Energy one", "Energy two"]
    assert positions == [10, 20, 30, 40]
