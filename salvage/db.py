"""The one data-access module: SQLite file by default, PostgreSQL by URL (same SQL, '?' params).

Holds what must outlive a request and be shared by every worker: CDS cards issued and their
feedback, the JWT jti replay cache, and the SMART app's server-side sessions and tokens.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from salvage.errors import DatabaseUnavailable

try:  # PostgreSQL errors, when the driver is installed
    import psycopg

    _DB_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, OSError, psycopg.Error)
except ImportError:  # pragma: no cover
    _DB_ERRORS = (sqlite3.Error, OSError)

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS cds_card (
        uuid TEXT PRIMARY KEY, service TEXT NOT NULL, kind TEXT NOT NULL,
        issued_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS cds_feedback (
        card TEXT NOT NULL, service TEXT NOT NULL, outcome TEXT NOT NULL,
        outcome_timestamp TEXT NOT NULL, reason_code TEXT, reason_display TEXT,
        accepted_suggestions TEXT, received_at REAL NOT NULL,
        PRIMARY KEY (card, outcome, outcome_timestamp))""",
    """CREATE TABLE IF NOT EXISTS jwt_jti (jti TEXT PRIMARY KEY, expires REAL NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS jwt_jti_expires ON jwt_jti (expires)""",
    """CREATE TABLE IF NOT EXISTS smart_session (
        id TEXT PRIMARY KEY, data TEXT NOT NULL, expires REAL NOT NULL)""",
]


def _safe_name(url: str) -> str:
    """The database named for people: a file path, or a URL without its password."""
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url


class Database:
    """A connection per thread; callers use '?' placeholders on either backend."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = urlparse(url)
        self.kind = "postgresql" if parsed.scheme in ("postgres", "postgresql") else "sqlite"
        if self.kind == "sqlite":
            self.path = (
                Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite") else Path(url)
            )
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseUnavailable(f"cannot open the database {self.path}: {exc}") from None
        self._local = threading.local()
        try:
            for statement in SCHEMA:
                self.execute(statement)
        except DatabaseUnavailable as exc:
            raise DatabaseUnavailable(
                f"cannot open the database {_safe_name(url)}: {exc.__cause__ or exc}"
            ) from None

    def _connect(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self.kind == "sqlite":
            conn = sqlite3.connect(
                self.path, timeout=10, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            # WAL with synchronous=NORMAL survives a process crash; only an OS crash can lose the
            # last transactions (sqlite.org/wal.html), acceptable for feedback and jti caches.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=10000")
        else:  # PostgreSQL by URL (pip install .[postgres]); tests/test_database.py runs both
            conn = psycopg.connect(self.url, autocommit=True)
        self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection (worker shutdown, tests, after an error)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            try:
                conn.close()
            except _DB_ERRORS:
                pass

    def _sql(self, sql: str) -> str:
        if self.kind == "postgresql":
            sql = sql.replace("?", "%s")
            if "INSERT OR IGNORE" in sql:
                sql = sql.replace("INSERT OR IGNORE", "INSERT") + " ON CONFLICT DO NOTHING"
        return sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            cursor = self._connect().execute(self._sql(sql), tuple(params))
            return list(cursor.fetchall()) if cursor.description else []
        except _DB_ERRORS as exc:
            self.close()
            raise DatabaseUnavailable(type(exc).__name__) from exc

    def insert_once(self, table: str, values: dict[str, Any]) -> bool:
        """Insert unless the primary key exists; True when this call inserted the row."""
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        sql = f"INSERT OR IGNORE INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608
        try:
            cursor = self._connect().execute(self._sql(sql), tuple(values.values()))
            return bool(cursor.rowcount)
        except _DB_ERRORS as exc:
            self.close()
            raise DatabaseUnavailable(type(exc).__name__) from exc

    def first_use_of_jti(self, jti: str, expires: float) -> bool:
        """Replay cache shared by every worker and instance (H17); expired entries are purged
        now and then (indexed), not on every request."""
        self._calls = getattr(self, "_calls", 0) + 1
        if self._calls % 200 == 1:
            self.execute("DELETE FROM jwt_jti WHERE expires < ?", (time.time(),))
        return self.insert_once("jwt_jti", {"jti": jti, "expires": expires})

    # -- SMART app sessions (the cookie carries only the id; the data is encrypted by the caller)
    def session_save(self, sid: str, blob: str, expires: float) -> None:
        self.execute("DELETE FROM smart_session WHERE id = ?", (sid,))
        self.execute(
            "INSERT INTO smart_session (id, data, expires) VALUES (?, ?, ?)", (sid, blob, expires)
        )

    def session_load(self, sid: str) -> tuple[str, float] | None:
        rows = self.execute("SELECT data, expires FROM smart_session WHERE id = ?", (sid,))
        return (str(rows[0][0]), float(rows[0][1])) if rows else None

    def session_delete(self, sid: str) -> None:
        self.execute("DELETE FROM smart_session WHERE id = ?", (sid,))

    # -- CDS card feedback summary (salvage feedback)
    def cards_issued_by_kind(self) -> dict[str, int]:
        return dict(self.execute("SELECT kind, COUNT(*) FROM cds_card GROUP BY kind"))

    def feedback_by_kind(self) -> list[tuple[str, str, int]]:
        """(card kind, outcome, distinct cards) for every kind with feedback."""
        return [
            (str(k), str(o), int(n))
            for k, o, n in self.execute(
                "SELECT c.kind, f.outcome, COUNT(DISTINCT f.card) FROM cds_feedback f "
                "JOIN cds_card c ON c.uuid = f.card GROUP BY c.kind, f.outcome"
            )
        ]

    def override_reasons_by_kind(self) -> list[tuple[str, str | None, str | None, int]]:
        """(card kind, reason code, reason display, distinct cards) of overridden cards."""
        return [
            (str(k), code, display, int(n))
            for k, code, display, n in self.execute(
                "SELECT c.kind, f.reason_code, f.reason_display, COUNT(DISTINCT f.card) "
                "FROM cds_feedback f JOIN cds_card c ON c.uuid = f.card "
                "WHERE f.outcome = 'overridden' GROUP BY c.kind, f.reason_code, f.reason_display"
            )
        ]
