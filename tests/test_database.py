"""The one data-access module behaves the same on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from salvage.db import Database
from tests.support_postgres import postgres_url  # noqa: F401 (pytest fixture)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path) -> Iterator[Database]:
    url = (
        str(tmp_path / "test.db")
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    database = Database(url)
    yield database
    database.close()


def test_a_jti_is_accepted_once(db: Database) -> None:
    jti = f"jti-{time.time_ns()}"
    assert db.first_use_of_jti(jti, time.time() + 60) is True
    assert db.first_use_of_jti(jti, time.time() + 60) is False


def test_duplicate_feedback_is_stored_once(db: Database) -> None:
    row = {
        "card": f"c-{time.time_ns()}",
        "service": "s",
        "outcome": "accepted",
        "outcome_timestamp": "2026-11-26T10:00:00Z",
        "reason_code": None,
        "reason_display": None,
        "accepted_suggestions": "[]",
        "received_at": time.time(),
    }
    assert db.insert_once("cds_feedback", row) is True
    assert db.insert_once("cds_feedback", row) is False
    assert db.execute("SELECT outcome FROM cds_feedback WHERE card = ?", (row["card"],)) == [
        ("accepted",)
    ]


def test_sessions_round_trip(db: Database) -> None:
    from smart_app.sessions import SessionStore

    store = SessionStore(db, "k")
    sid = store.create({"access_token": "secret-token", "patient": "p1"})
    assert store.load(sid) == {"access_token": "secret-token", "patient": "p1"}
    raw = db.execute("SELECT data FROM smart_session WHERE id = ?", (sid,))[0][0]
    assert "secret-token" not in raw  # encrypted at rest
    store.delete(sid)
    assert store.load(sid) is None
