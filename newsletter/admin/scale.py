"""Admin change lists that stay fast at a million rows.

Django's change list counts every matching row twice (the page's total and the
filtered total), offers facet counts over the whole table and lists distinct values
for free-text filters: each reads the whole table, 0.3-2 s at a million readers. Here:

- `BigTablePaginator` counts at most COUNT_CAP matching rows (enough to page through;
  past that the editor narrows the search), and an unfiltered list is counted from
  PostgreSQL's estimate of the table's rows;
- `ScaledAdmin` never counts the full table again, and shows facet counts only while
  the table is small (below estimates.BIG rows);
- `choices_filter` offers a fixed list of values instead of SELECT DISTINCT.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from newsletter.estimates import BIG, table_rows_estimate

COUNT_CAP = 10_000
# A search term that is a whole address is looked up exactly, through lower(email).
WHOLE_ADDRESS = re.compile(r"[^@\s,]+@[^@\s,]+\.[^@\s,]+")


class BigTablePaginator(Paginator):
    """Count a big table's rows from statistics, and a filtered list's up to COUNT_CAP."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not queryset.query.where:
            estimate = table_rows_estimate(queryset.model)
            if estimate is not None and estimate >= BIG:
                return estimate
        return queryset.order_by()[:COUNT_CAP].count()


def _is_big(model) -> bool:
    estimate = table_rows_estimate(model)
    return estimate is not None and estimate >= BIG


class ScaledChangeList(ChangeList):
    def get_filters(self, request):
        # Called (more than once) before anything counts facets; a big table gets none,
        # not even on request.
        if not hasattr(self, "_big"):
            self._big = (self.add_facets or self.is_facets_optional) and _is_big(self.model)
        if self._big:
            self.add_facets = self.is_facets_optional = False
        return super().get_filters(request)


class ScaledAdmin(admin.ModelAdmin):
    paginator = BigTablePaginator
    show_full_result_count = False
    # Rendering a row of a change list costs 2-5 ms of Python on this hardware.
    list_per_page = 50

    def get_changelist(self, request, **kwargs):
        return ScaledChangeList


def choices_filter(
    field: str, title: str, choices: Iterable[tuple[str, str]]
) -> type[admin.SimpleListFilter]:
    """Return a list filter on `field` offering `choices`, without reading the table."""
    fixed = list(choices)

    class ChoicesFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request, model_admin):
            return fixed

        def queryset(self, request, queryset):
            value = self.value()
            return queryset.filter(**{field: value}) if value else queryset

        def choices(self, changelist):
            # No facet counts: one filtered COUNT per choice (a country each) is too many.
            yield {
                "selected": self.value() is None,
                "query_string": changelist.get_query_string(remove=[self.parameter_name]),
                "display": _("All"),
            }
            for lookup, title in self.lookup_choices:
                yield {
                    "selected": self.value() == str(lookup),
                    "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                    "display": title,
                }

    ChoicesFilter.title = title
    return ChoicesFilter
