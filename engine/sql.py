"""Raw SQL for the hot path, written once for SQLite and Postgres.

Peewee spends about 0.3 ms building the text of even a simple statement; the statements
run for every session and every rescore are kept here as text instead, and the values
are converted with the models' own fields so they read back exactly as Peewee's do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import peewee

from engine.db import is_postgres
from engine.models import JSONField, UTCDateTimeField

# Values in and out of raw statements, converted exactly as the models' fields convert them.
_DATETIME, _DATE, _JSON = UTCDateTimeField(), peewee.DateField(), JSONField()
to_db_time, from_db_time = _DATETIME.db_value, _DATETIME.python_value
to_db_day, from_db_day = _DATE.db_value, _DATE.python_value
to_db_json, from_db_json = _JSON.db_value, _JSON.python_value


class Sql:
    """Dialect details for one database: the placeholder, LEAST/MIN, row locks."""

    def __init__(self, database: peewee.Database):
        self.database = database
        self.postgres = is_postgres(database)
        self.mark = "%s" if self.postgres else "?"
        self.least = "LEAST" if self.postgres else "MIN"
        self.lock_row = " FOR NO KEY UPDATE" if self.postgres else ""
        self.skip_locked = " FOR UPDATE SKIP LOCKED" if self.postgres else ""

    def marks(self, count: int) -> str:
        """``?, ?, ?`` for an IN list or one row of VALUES."""
        return ", ".join([self.mark] * count)

    def rows(self, count: int, width: int) -> str:
        """``(?, ?), (?, ?)``: the VALUES of a multi-row insert."""
        row = f"({self.marks(width)})"
        return ", ".join([row] * count)

    def run(self, text: str, params: Sequence[Any] = ()) -> Any:
        """Execute ``text``, whose placeholders are written ``{p}``, and return the cursor."""
        return self.database.execute_sql(text.replace("{p}", self.mark), params)

    def all(self, text: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.run(text, params).fetchall()


def flatten(rows: Sequence[Sequence[Any]]) -> list[Any]:
    return [value for row in rows for value in row]
