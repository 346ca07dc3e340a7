"""One UPDATE for many rows with different values: PostgreSQL's UPDATE ... FROM unnest(...).

Django's bulk_update writes a CASE WHEN per row and column; building that statement
for 500 rows took 2-3 s of Python in the event applier, far longer than PostgreSQL
takes to run it. Here each column travels as one array parameter, cast to the
column's type, and unnest() turns the arrays back into rows: a statement of the same
few parameters whatever the number of rows. Other databases (SQLite, the embedded
mode) get bulk_update.

The arrays are bound on the server (psycopg's own cursor, not Django's client-side
one, which quotes every element into the SQL text), and only columns that need it
(JSON) go through the field's get_db_prep_save: at 20,000 events those two steps
were a third of the applier's CPU.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection
from django.db.models import JSONField, Model

# Fields whose Python value psycopg adapts as it is (ints, text, aware datetimes, None).
_PLAIN = (
    "AutoField",
    "BigAutoField",
    "IntegerField",
    "BigIntegerField",
    "PositiveIntegerField",
    "PositiveSmallIntegerField",
    "SmallIntegerField",
    "ForeignKey",
    "CharField",
    "TextField",
    "DateTimeField",
    "BooleanField",
)


def _column(field, objs: Sequence[Model]) -> list:
    if not isinstance(field, JSONField) and field.get_internal_type() in _PLAIN:
        return [getattr(obj, field.attname) for obj in objs]
    return [field.get_db_prep_save(getattr(obj, field.attname), connection) for obj in objs]


def rows_update(model: type[Model], objs: Sequence[Model], fields: Sequence[str]) -> None:
    """Write `fields` of every object in `objs` back to its row, in one statement."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objs, fields)
        return
    from django.db.backends.postgresql.base import ServerBindingCursor

    meta = model._meta
    quote = connection.ops.quote_name
    columns = [meta.pk] + [meta.get_field(name) for name in fields]
    arrays = [_column(field, objs) for field in columns]
    casts = ", ".join(f"%s::{field.db_type(connection)}[]" for field in columns)
    names = [quote(field.column) for field in columns]
    assignments = ", ".join(f"{name} = v.{name}" for name in names[1:])
    table = quote(meta.db_table)
    sql = (
        f"UPDATE {table} AS t SET {assignments} FROM unnest({casts}) AS v({', '.join(names)}) "  # noqa: S608 - names from the model; values are parameters
        f"WHERE t.{names[0]} = v.{names[0]}"
    )
    connection.ensure_connection()
    # Django's cursor wrapper (query logging, execute wrappers) around a server-binding cursor.
    with connection._prepare_cursor(ServerBindingCursor(connection.connection)) as cursor:
        cursor.execute(sql, arrays)
