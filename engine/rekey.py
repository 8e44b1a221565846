"""``tqs rotate-key``: re-seal every stored student name and reason under the first key of TQS_SECRET_KEY.

Each row is updated only if it still holds the value read (compare and set), so a session stored
meanwhile by a worker is never overwritten with its older value; that one is already sealed
under the new key. Safe to repeat and to interrupt: the next run re-seals what is left.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import peewee

from engine.personal import PREFIX, PersonalDataCipher, UnreadableSecret
from engine.sql import Sql
from engine.terminal import ProgressHook

BATCH = 500
SEALED_COLUMNS = (  # table, its key, the sealed columns
    ("sessions", ("session_id",), ("student_name",)),
    ("reschedules", ("session_id",), ("reason",)),
    ("tutor_scores", ("tutor_id", "rule"), ("insights", "recommendations")),
)


def rotate_personal_data(database: peewee.Database, cipher: PersonalDataCipher,
                         progress: ProgressHook | None = None) -> dict[str, int]:
    """Rows re-sealed per table."""
    counts = {}
    for table, key, columns in SEALED_COLUMNS:
        counts[table] = _reseal_table(database, cipher, table, key, columns, progress)
    counts["inbox"] = _reseal_inbox(database, cipher, progress)
    return counts


def values_not_under(database: peewee.Database, current: PersonalDataCipher) -> int:
    """How many stored values the current key alone cannot open (plaintext, or sealed with an older key):
    0 before anyone may drop the old keys. A row a process still on the old key list wrote meanwhile counts."""
    sql, missing = Sql(database), 0
    for table, _, columns in SEALED_COLUMNS:
        for column in columns:
            missing += sum(not _opens(current, value) for (value,) in
                           sql.all(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL"))
    for (stored,) in sql.all("SELECT payload FROM inbox"):
        payload = json.loads(stored)
        info = payload.get("reschedule_info") if isinstance(payload.get("reschedule_info"), dict) else {}
        missing += sum(not _opens(current, value) for value in (payload.get("student_name"), info.get("reason"))
                       if isinstance(value, str))
    return missing


def _opens(current: PersonalDataCipher, value: str) -> bool:
    try:
        return value.startswith(PREFIX) and current.open(value) is not None
    except UnreadableSecret:
        return False


def _reseal_table(database, cipher, table: str, key: tuple[str, ...], columns: tuple[str, ...],
                  progress: ProgressHook | None) -> int:
    sql = Sql(database)
    keys, marks = ", ".join(key), ", ".join("{p}" for _ in key)
    total = sql.all(f"SELECT COUNT(*) FROM {table}")[0][0]
    done, last = 0, None
    while True:
        after = f"WHERE ({keys}) > ({marks}) " if last else ""
        rows = sql.all(f"SELECT {keys}, {', '.join(columns)} FROM {table} {after}ORDER BY {keys} LIMIT {BATCH}",
                       last or ())
        if not rows:
            break
        for offset, column in enumerate(columns, len(key)):
            changed = [(cipher.reseal(row[offset]), *row[:len(key)], row[offset])
                       for row in rows if row[offset] is not None]
            _compare_and_set(database, table, key, column, changed)
        done, last = done + len(rows), rows[-1][:len(key)]
        if progress:
            progress(table, done, max(total, done))
    return done


def _reseal_inbox(database, cipher, progress: ProgressHook | None) -> int:
    sql = Sql(database)
    total = sql.all("SELECT COUNT(*) FROM inbox")[0][0]
    done, last = 0, 0
    while True:
        rows = sql.all(f"SELECT id, payload FROM inbox WHERE id > {{p}} ORDER BY id LIMIT {BATCH}", (last,))
        if not rows:
            break
        _compare_and_set(database, "inbox", ("id",), "payload",
                         [(_resealed_payload(payload, cipher.reseal), row_id, payload) for row_id, payload in rows])
        done, last = done + len(rows), rows[-1][0]
        if progress:
            progress("inbox", done, max(total, done))
    return done


def _resealed_payload(stored: str, reseal: Callable[[str | None], str | None]) -> str:
    payload = json.loads(stored)
    if isinstance(payload.get("student_name"), str):
        payload["student_name"] = reseal(payload["student_name"])
    info = payload.get("reschedule_info")
    if isinstance(info, dict) and isinstance(info.get("reason"), str):
        info["reason"] = reseal(info["reason"])
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def _compare_and_set(database, table: str, key: tuple[str, ...], column: str, rows: list[tuple]) -> None:
    """``rows`` are (new value, *key, value read): a row changed since it was read is left as it is."""
    sql = Sql(database)
    where = " AND ".join(f"{name} = {{p}}" for name in key)
    statement = f"UPDATE {table} SET {column} = {{p}} WHERE {where} AND {column} = {{p}}"
    with database.atomic():
        cursor = database.cursor()
        cursor.executemany(statement.replace("{p}", sql.mark), rows)
