"""The SQL a read sends, captured at ``execute_sql``, and each statement's plan checked for index use.

A plan that reads a big table (``BIG_TABLE_ROWS`` rows or more) with a sequential scan fails the check:
at 10,000 tutors such a scan is what makes a read grow with the data.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

import peewee

BIG_TABLE_ROWS = 10_000
SEQ_SCAN = re.compile(r"Seq Scan on (\w+)")
# A count (the total beside a page) reads every row it counts whatever the plan: when those are a good part
# of the table (COUNTED_SHARE or more), a sequential scan is the cheapest way, reported as such, not failed
COUNT = re.compile(r'^SELECT COUNT\(1\) FROM \(SELECT 1 FROM "\w+"')
SEQ_SCAN_ROWS = re.compile(r"Seq Scan on (\w+) .*?\(actual time=[\d.]+\.\.[\d.]+ rows=(\d+) loops=(\d+)\)")
COUNTED_SHARE = 0.1


@dataclass
class Plan:
    query: str  # which read it belongs to
    sql: str
    params: tuple
    text: str
    big_seq_scans: list[str]
    counts_most: bool = False  # a count of a good part of the table: a scan is its cheapest plan

    @property
    def uses_index(self) -> bool:
        return not self.big_seq_scans


@contextlib.contextmanager
def captured(database: peewee.Database) -> Iterator[list[tuple[str, tuple]]]:
    """Every statement ``database`` runs inside the block, with its parameters."""
    statements: list[tuple[str, tuple]] = []
    wrapped_before = "execute_sql" in vars(database)
    original = database.execute_sql

    def capture(sql, params=None, *args, **kwargs):
        statements.append((sql, tuple(params or ())))
        return original(sql, params, *args, **kwargs)

    database.execute_sql = capture
    try:
        yield statements
    finally:
        if wrapped_before:
            database.execute_sql = original
        else:
            del database.execute_sql  # the class's own method shows through again


def table_rows(database: peewee.Database) -> dict[str, int]:
    """The planner's row estimate of every table of ours."""
    cursor = database.execute_sql("SELECT relname, reltuples::bigint FROM pg_class c JOIN pg_namespace n ON "
                                  "n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'")
    return {name: rows for name, rows in cursor.fetchall()}


def explain(database: peewee.Database, query: str, sql: str, params: tuple, rows: dict[str, int]) -> Plan:
    cursor = database.execute_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
    text = "\n".join(line for (line,) in cursor.fetchall())
    big = sorted({table for table in SEQ_SCAN.findall(text) if rows.get(table, 0) >= BIG_TABLE_ROWS})
    counts_most = bool(big) and bool(COUNT.match(sql)) and all(
        int(found) * int(loops) >= COUNTED_SHARE * rows[table]
        for table, found, loops in SEQ_SCAN_ROWS.findall(text) if table in big)
    return Plan(query, sql, params, text, [] if counts_most else big, counts_most=counts_most)


def render(plans: list[Plan], rows: dict[str, int]) -> str:
    sizes = ", ".join(f"{name} {count:,}" for name, count in sorted(rows.items(), key=lambda r: -r[1]) if count)
    parts = [f"Table sizes (planner estimates): {sizes}\n"
             f"A sequential scan of a table of {BIG_TABLE_ROWS:,} rows or more fails the check, except in a count "
             f"of {COUNTED_SHARE:.0%} or more of its rows (the total beside a page), which reads each of them "
             "whatever the plan, so a scan is its cheapest.\n"]
    for plan in plans:
        verdict = (f"counts {COUNTED_SHARE:.0%} or more of the table: a scan" if plan.counts_most
                   else "uses indexes" if plan.uses_index else f"SEQ SCAN on {', '.join(plan.big_seq_scans)}")
        parts.append(f"-- {plan.query}: {verdict}\n-- {plan.sql}\n-- params {plan.params!r}\n{plan.text}\n")
    return "\n".join(parts)
