"""The sandbox's durable state in SQLite: launch contexts, codes, tokens, drafts, faults, jti."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS launch (id TEXT PRIMARY KEY, context TEXT NOT NULL,
                                   created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS code (code TEXT PRIMARY KEY, data TEXT NOT NULL, expires REAL NOT NULL,
                                 used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS token (access_token TEXT PRIMARY KEY, data TEXT NOT NULL,
                                  expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS refresh (token TEXT PRIMARY KEY, data TEXT NOT NULL,
                                    expires REAL NOT NULL,
                                    revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS assertion_jti (jti TEXT PRIMARY KEY, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        with self._conn() as conn:
            conn.executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
        return conn

    # generic helpers
    def put(self, table: str, key_col: str, key: str, data: dict[str, Any], expires: float) -> None:
        self._conn().execute(
            f"INSERT OR REPLACE INTO {table} ({key_col}, data, expires) VALUES (?,?,?)",  # noqa: S608
            (key, json.dumps(data), expires),
        )

    def get(self, table: str, key_col: str, key: str) -> dict[str, Any] | None:
        row = (
            self._conn()
            .execute(
                f"SELECT data, expires FROM {table} WHERE {key_col} = ?",  # noqa: S608
                (key,),
            )
            .fetchone()
        )
        if row is None or row[1] < time.time():
            return None
        return json.loads(row[0])

    def save_launch(self, launch_id: str, context: dict[str, Any]) -> None:
        self._conn().execute(
            "INSERT INTO launch (id, context, created) VALUES (?,?,?)",
            (launch_id, json.dumps(context), time.time()),
        )

    def launch(self, launch_id: str) -> dict[str, Any] | None:
        row = (
            self._conn()
            .execute("SELECT context, created FROM launch WHERE id = ?", (launch_id,))
            .fetchone()
        )
        if row is None or time.time() - row[1] > 600:  # a launch is valid for 10 minutes
            return None
        return json.loads(row[0])

    def use_code(self, code: str) -> dict[str, Any] | None:
        """The code's data once; a second use returns None (RFC 6749 section 4.1.2)."""
        conn = self._conn()
        row = conn.execute(
            "SELECT data, expires, used FROM code WHERE code = ?", (code,)
        ).fetchone()
        if row is None or row[2] or row[1] < time.time():
            return None
        return json.loads(row[0])

    def mark_code_used(self, code: str) -> None:
        self._conn().execute("UPDATE code SET used = 1 WHERE code = ?", (code,))

    def code_was_used(self, code: str) -> bool:
        row = self._conn().execute("SELECT used FROM code WHERE code = ?", (code,)).fetchone()
        return bool(row and row[0])

    def save_code(self, code: str, data: dict[str, Any], expires: float) -> None:
        self._conn().execute(
            "INSERT INTO code (code, data, expires) VALUES (?,?,?)",
            (code, json.dumps(data), expires),
        )

    def refresh(self, token: str) -> dict[str, Any] | None:
        row = (
            self._conn()
            .execute("SELECT data, expires, revoked FROM refresh WHERE token = ?", (token,))
            .fetchone()
        )
        if row is None or row[2] or row[1] < time.time():
            return None
        return json.loads(row[0])

    def revoke_refresh(self, token: str) -> None:
        self._conn().execute("UPDATE refresh SET revoked = 1 WHERE token = ?", (token,))

    def save_refresh(self, token: str, data: dict[str, Any], expires: float) -> None:
        self._conn().execute(
            "INSERT INTO refresh (token, data, expires) VALUES (?,?,?)",
            (token, json.dumps(data), expires),
        )

    def first_use_of_jti(self, jti: str, expires: float) -> bool:
        conn = self._conn()
        conn.execute("DELETE FROM assertion_jti WHERE expires < ?", (time.time(),))
        try:
            conn.execute("INSERT INTO assertion_jti (jti, expires) VALUES (?,?)", (jti, expires))
        except sqlite3.IntegrityError:
            return False
        return True

    def set_value(self, key: str, value: Any) -> None:
        self._conn().execute(
            "INSERT OR REPLACE INTO kv (key, value) VALUES (?,?)", (key, json.dumps(value))
        )

    def value(self, key: str, default: Any = None) -> Any:
        row = self._conn().execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default
