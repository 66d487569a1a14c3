"""List pages that stay fast when a table holds millions of rows (events, calls, runs).

* :class:`CappedPaginator` never counts a whole table: it counts at most ``CAP`` rows of the
  filtered list (an indexed, bounded count) and, on PostgreSQL, shows the planner's estimate of
  the table's size for an unfiltered list, as large Django sites do.
* :class:`BoundedListMixin` keeps the list query to the columns the list shows (no raw bodies or
  headers), and searches identifiers by exact, indexed equality (``search_exact``).
* :func:`distinct_values_filter` lists the values of an indexed column by skipping through its
  index one value at a time (a few index lookups, never ``SELECT DISTINCT`` over the table).
"""

from __future__ import annotations

from functools import cached_property

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

__all__ = ["CAP", "BoundedListMixin", "CappedPaginator", "distinct_values_filter"]

CAP = 10_000  # rows a list counts and pages through; narrow with filters beyond


class CappedPaginator(Paginator):
    """Counts at most ``CAP`` rows: pages 1 … CAP/per_page are offered, and ``estimate``
    holds the table's approximate size when the list is unfiltered (PostgreSQL)."""

    @cached_property
    def counted(self) -> int:
        # how many of at most CAP + 1 matching rows (order does not change how many: none is
        # asked, so the database reads whichever index is cheapest, keys only)
        return self.object_list.order_by().values("pk")[: CAP + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self.counted, CAP)

    @property
    def capped(self) -> bool:
        """More rows match than the list pages through."""
        return self.counted > CAP

    @cached_property
    def estimate(self) -> int | None:
        """The planner's row estimate for the whole table, or None (SQLite, or no statistics
        yet). Read from ``pg_class``: no scan."""
        queryset = self.object_list
        if not self.capped or queryset.query.where:
            return None
        alias = queryset.db
        if connections[alias].vendor != "postgresql":
            return None
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [queryset.model._meta.db_table],
            )
            row = cursor.fetchone()
        return int(row[0]) if row and row[0] and row[0] > CAP else None


class BoundedListMixin:
    """For a ``ModelAdmin`` of a large table: ``list_defer`` names the columns its list never
    loads; ``search_exact`` the identifier columns a search matches exactly (each indexed)."""

    paginator = CappedPaginator
    show_full_result_count = False
    list_defer: list[str] = []
    search_exact: list[str] = []

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        match = getattr(request, "resolver_match", None)
        if self.list_defer and match and match.url_name.endswith("_changelist"):
            queryset = queryset.defer(*self.list_defer)
        return queryset

    def get_search_fields(self, request):
        # a non-empty value shows the search box; get_search_results does the matching
        return self.search_exact or super().get_search_fields(request)

    def get_search_results(self, request, queryset, search_term):
        if not self.search_exact:
            return super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q()
        for name in self.search_exact:
            condition |= Q(**{name: term})
        return queryset.filter(condition), False


def distinct_values_filter(field_name: str, title: str, *, limit: int = 100):
    """A list filter offering the values a column holds, read by stepping through its index
    (``WHERE col > last ORDER BY col LIMIT 1``, once per value, at most ``limit`` values): the
    cost is the number of distinct values, not the number of rows. The column needs an index
    that starts with it."""

    class DistinctValuesFilter(admin.SimpleListFilter):
        parameter_name = field_name

        def lookups(self, request, model_admin):
            values = model_admin.model.objects.order_by(field_name).values_list(
                field_name, flat=True
            )
            found, last = [], None
            for _step in range(limit):
                step = values if last is None else values.filter(**{f"{field_name}__gt": last})
                value = step.first()
                if value is None:
                    break
                found.append(value)
                last = value
            return [(value, value or _("(none)")) for value in found]

        def queryset(self, request, queryset):
            value = self.value()
            return queryset if value is None else queryset.filter(**{field_name: value})

    DistinctValuesFilter.title = title
    return DistinctValuesFilter
