"""An import's checked rows merged into the list a chunk at a time, in sets, not row by row.

Through the ORM an import went at under 300 rows/s at a million rows: three queries
and a model instance per reader. Here each chunk of rows that passed the row checks
is staged in a temporary table (PostgreSQL: one COPY; SQLite, the embedded mode:
one executemany), and a few statements, the same on both databases, decide what
every row becomes and write the new readers, their sections and their consent
records:

- a row whose address an earlier row of the file had is a duplicate (the `seen`
  table holds the file's addresses, so the worker's memory does not grow with it);
- a suppressed address (erased, bounced, complained) is skipped and never stored;
- an address already on the list is never changed (issue 11: nothing changes a
  reader without their consent, an import included). It is "unchanged" when the
  reader is active or pending with the row's very details and sections: what the
  row asks for is already true. Otherwise it is skipped, with the reader's status;
- the rest are inserted with ON CONFLICT DO NOTHING; a row that meets a reader who
  signed up while the import ran is skipped, found by the token secret it was given.

Each chunk is one transaction: a failure leaves no half-written chunk, and the
chunks before it stay imported (importing the file again finds them unchanged).
The temporary tables live in the job's own database session and go with it.
"""

# Every table and column name below is this module's constant or a model's own; every value
# is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

from django.db import DatabaseError, connection, transaction
from django.db.models import Model
from django.utils import timezone

from newsletter.models import ConsentRecord, Newsletter, Subscriber, Suppression

STAGE = "newsletter_import_stage"
STAGE_SECTIONS = "newsletter_import_stage_sections"
SEEN = "newsletter_import_seen"

# What became of a staged row (`Merged.kind`).
CREATED = "created"
UNCHANGED = "unchanged"
DUPLICATE = "duplicate"
SUPPRESSED = "suppressed"
EXISTING = "existing"
RACED = "raced"


@dataclass(frozen=True)
class StagedRow:
    """A row that passed the row checks: its number in the file and its clean values."""

    number: int
    email: str
    name: str
    organisation: str
    country: str
    category_ids: tuple[int, ...]
    email_hash: str  # suppression's keyed hash of the address
    token_secret: str  # the new reader's, should the row create one
    cells: tuple[str, ...] = ()  # as read, to write back should the row fail here


@dataclass(frozen=True)
class Merged:
    """What became of one staged row; `first_row` for a duplicate, `status` for a known reader."""

    number: int
    kind: str
    subscriber_id: int | None
    first_row: int | None
    status: str


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _insert_select(
    model: type[Model], from_stage: dict[str, str], fixed: dict[str, object]
) -> tuple[str, str, list]:
    """Return the column list, the SELECT list and its parameters to insert `model` rows.

    Every concrete field is written: from a staged column (`from_stage`), a value of
    this import (`fixed`) or the field's own default, so a field added to the model
    later never breaks the import with a NOT NULL error.
    """
    columns: list[str] = []
    values: list[str] = []
    params: list = []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(_q(field.column))
        if field.name in from_stage:
            values.append(from_stage[field.name])
            continue
        value = fixed[field.name] if field.name in fixed else field.get_default()
        # A typed parameter: PostgreSQL reads an untyped NULL in a SELECT list as text.
        is_pg = connection.vendor == "postgresql"
        values.append(f"%s::{field.db_type(connection)}" if is_pg else "%s")
        params.append(field.get_db_prep_save(value, connection))
    return ", ".join(columns), ", ".join(values), params


class ImportStage:
    """The temporary tables of one import, and the statements that merge a chunk through them."""

    def __init__(
        self, *, newsletter: Newsletter, prior_consent: str, confirmed_at: datetime, write: bool
    ) -> None:
        self.newsletter = newsletter
        self.prior_consent = prior_consent
        self.confirmed_at = confirmed_at
        self.write = write
        self.postgres = connection.vendor == "postgresql"
        self.analysed = False

    def __enter__(self) -> ImportStage:
        with connection.cursor() as cursor:
            self._drop(cursor)
            cursor.execute(
                f"CREATE TEMPORARY TABLE {STAGE} (number integer PRIMARY KEY, email text NOT NULL,"
                " name text NOT NULL, organisation text NOT NULL, country text NOT NULL,"
                " email_hash text NOT NULL, token_secret text NOT NULL, outcome text,"
                " first_row integer, status text, same_details boolean, subscriber_id integer)"
            )
            cursor.execute(f"CREATE INDEX {STAGE}_email ON {STAGE} (email)")
            cursor.execute(
                f"CREATE TEMPORARY TABLE {STAGE_SECTIONS} (number integer NOT NULL,"
                " category_id integer NOT NULL, PRIMARY KEY (number, category_id))"
            )
            cursor.execute(
                f"CREATE TEMPORARY TABLE {SEEN} (email text PRIMARY KEY, number integer NOT NULL)"
            )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            with connection.cursor() as cursor:
                self._drop(cursor)
        except DatabaseError:
            if error is None:
                raise
            # Failing already (a connection lost?): the session's temporary tables go
            # with it, and the first error is the one to report.

    @staticmethod
    def _drop(cursor) -> None:
        for table in (STAGE, STAGE_SECTIONS, SEEN):
            cursor.execute(f"DROP TABLE IF EXISTS {table}")

    # --- One chunk ----------------------------------------------------------------------

    def merge(self, rows: Sequence[StagedRow]) -> list[Merged]:
        """Decide what each row becomes and write the new readers, in one transaction."""
        if not rows:
            return []
        with transaction.atomic(), connection.cursor() as cursor:
            if self.postgres:
                # Every join here is a chunk of a few thousand rows against a table
                # through its index; never hash or sort a whole table for one chunk.
                cursor.execute(
                    "SELECT set_config('enable_hashjoin', 'off', true),"
                    " set_config('enable_mergejoin', 'off', true)"
                )
            self._stage(cursor, rows)
            self._classify(cursor)
            if self.write:
                self._insert(cursor)
            else:  # a dry run: every row left would be created
                cursor.execute(f"UPDATE {STAGE} SET outcome = %s WHERE outcome IS NULL", [CREATED])
            cursor.execute(
                f"SELECT number, outcome, subscriber_id, first_row, status FROM {STAGE} ORDER BY number"
            )
            return [Merged(*record) for record in cursor.fetchall()]

    def _stage(self, cursor, rows: Sequence[StagedRow]) -> None:
        stage = [
            (
                row.number,
                row.email,
                row.name,
                row.organisation,
                row.country,
                row.email_hash,
                row.token_secret,
            )
            for row in rows
        ]
        sections = [(row.number, category) for row in rows for category in row.category_ids]
        stage_columns = "number, email, name, organisation, country, email_hash, token_secret"
        if self.postgres:
            cursor.execute(f"TRUNCATE {STAGE}, {STAGE_SECTIONS}")
            raw = cursor.cursor  # psycopg 3: COPY is far faster than any INSERT
            with raw.copy(f"COPY {STAGE} ({stage_columns}) FROM STDIN") as copy:
                for record in stage:
                    copy.write_row(record)
            with raw.copy(f"COPY {STAGE_SECTIONS} (number, category_id) FROM STDIN") as copy:
                for record in sections:
                    copy.write_row(record)
            if not self.analysed:
                # Temporary tables are never analysed by autovacuum; without statistics
                # the planner may scan the whole list instead of its address index.
                # Every chunk is alike, so the first one's statistics serve them all.
                cursor.execute(f"ANALYZE {STAGE}")
                self.analysed = True
        else:
            cursor.execute(f"DELETE FROM {STAGE}")
            cursor.execute(f"DELETE FROM {STAGE_SECTIONS}")
            cursor.executemany(
                f"INSERT INTO {STAGE} ({stage_columns}) VALUES (%s, %s, %s, %s, %s, %s, %s)", stage
            )
            cursor.executemany(
                f"INSERT INTO {STAGE_SECTIONS} (number, category_id) VALUES (%s, %s)", sections
            )

    def _classify(self, cursor) -> None:
        readers = _q(Subscriber._meta.db_table)
        through = _q(Subscriber.categories.through._meta.db_table)
        newsletter = self.newsletter.pk
        # Lookups are correlated subqueries, one index probe per staged row whatever the
        # planner believes of the big table: a join let it hash or scan the whole list
        # (its statistics lag while an import grows it: "625 readers", of a million).
        # (`seen` is this import's own table and the planner sees its true size, so
        # only the duplicates are written.)
        cursor.execute(
            f"UPDATE {STAGE} SET outcome = %s, first_row ="
            f" (SELECT seen.number FROM {SEEN} AS seen WHERE seen.email = {STAGE}.email)"
            f" WHERE EXISTS (SELECT 1 FROM {SEEN} AS seen WHERE seen.email = {STAGE}.email)",
            [DUPLICATE],
        )
        cursor.execute(
            f"INSERT INTO {SEEN} (email, number) SELECT email, number FROM {STAGE} WHERE outcome IS NULL"
        )
        cursor.execute(
            f"UPDATE {STAGE} SET outcome = %s WHERE outcome IS NULL AND EXISTS ("
            f" SELECT 1 FROM {_q(Suppression._meta.db_table)} AS p"
            f" WHERE p.newsletter_id = %s AND p.email_hash = {STAGE}.email_hash)",
            [SUPPRESSED, newsletter],
        )
        # lower(email) and the newsletter: the list's unique index.
        cursor.execute(
            f"UPDATE {STAGE} SET (subscriber_id, status, same_details) = ("
            f" SELECT s.id, s.status, (s.name = {STAGE}.name"
            f"  AND s.organisation = {STAGE}.organisation AND s.country = {STAGE}.country)"
            f" FROM {readers} AS s WHERE s.newsletter_id = %s AND lower(s.email) = {STAGE}.email)"
            f" WHERE outcome IS NULL",
            [newsletter],
        )
        cursor.execute(
            f"UPDATE {STAGE} SET outcome = CASE WHEN same_details AND status IN (%s, %s)"
            f" AND NOT EXISTS (SELECT 1 FROM {STAGE_SECTIONS} AS x WHERE x.number = {STAGE}.number"
            f"  AND NOT EXISTS (SELECT 1 FROM {through} AS t"
            f"   WHERE t.subscriber_id = {STAGE}.subscriber_id AND t.category_id = x.category_id))"
            f" AND NOT EXISTS (SELECT 1 FROM {through} AS t WHERE t.subscriber_id = {STAGE}.subscriber_id"
            f"  AND NOT EXISTS (SELECT 1 FROM {STAGE_SECTIONS} AS x"
            f"   WHERE x.number = {STAGE}.number AND x.category_id = t.category_id))"
            f" THEN %s ELSE %s END"
            f" WHERE outcome IS NULL AND subscriber_id IS NOT NULL",
            [Subscriber.Status.ACTIVE, Subscriber.Status.PENDING, UNCHANGED, EXISTING],
        )

    def _insert(self, cursor) -> None:
        readers = _q(Subscriber._meta.db_table)
        now = timezone.now()
        prior = bool(self.prior_consent)
        columns, values, params = _insert_select(
            Subscriber,
            {
                field: field
                for field in ("email", "name", "organisation", "country", "token_secret")
            },
            {
                "newsletter": self.newsletter.pk,
                "status": Subscriber.Status.ACTIVE if prior else Subscriber.Status.PENDING,
                "confirmed_at": self.confirmed_at if prior else None,
                "source": "import",
                "created_at": now,
                "updated_at": now,
            },
        )
        # WHERE before ON CONFLICT also keeps SQLite from reading it as a join's ON.
        insert = (
            f"INSERT INTO {readers} ({columns}) SELECT {values} FROM {STAGE}"
            f" WHERE outcome IS NULL ORDER BY number ON CONFLICT DO NOTHING"
        )
        if self.postgres:  # the new ids straight from the INSERT
            cursor.execute(
                f"WITH created AS ({insert} RETURNING id, email)"
                f" UPDATE {STAGE} SET subscriber_id = created.id, outcome = %s"
                f" FROM created WHERE created.email = {STAGE}.email",
                [*params, CREATED],
            )
        else:  # no INSERT in a WITH: found again by address and the token secret given
            cursor.execute(insert, params)
            cursor.execute(
                f"UPDATE {STAGE} SET subscriber_id = s.id, outcome = %s FROM {readers} AS s"
                f" WHERE {STAGE}.outcome IS NULL AND s.newsletter_id = %s"
                f" AND lower(s.email) = {STAGE}.email AND s.token_secret = {STAGE}.token_secret",
                [CREATED, self.newsletter.pk],
            )
        # A row left met a reader who signed up while the import ran.
        cursor.execute(f"UPDATE {STAGE} SET outcome = %s WHERE outcome IS NULL", [RACED])
        through = _q(Subscriber.categories.through._meta.db_table)
        cursor.execute(
            f"INSERT INTO {through} (subscriber_id, category_id)"
            f" SELECT st.subscriber_id, x.category_id FROM {STAGE} AS st"
            f" JOIN {STAGE_SECTIONS} AS x ON x.number = st.number WHERE st.outcome = %s",
            [CREATED],
        )
        if prior:
            columns, values, params = _insert_select(
                ConsentRecord,
                {"subscriber": "subscriber_id"},
                {
                    "action": ConsentRecord.Action.IMPORT,
                    "at": now,
                    "form": "import",
                    "method": "import",
                    "note": self.prior_consent[:300],
                },
            )
            cursor.execute(
                f"INSERT INTO {_q(ConsentRecord._meta.db_table)} ({columns})"
                f" SELECT {values} FROM {STAGE} WHERE outcome = %s ORDER BY number",
                [*params, CREATED],
            )
