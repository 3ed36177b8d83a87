"""Issue 14: a database that cannot be written is a 503 with a clear body at run time, cards
already computed are still returned when only their audit row cannot be written, and a database
that cannot be opened stops start-up with a message naming it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from salvage.app import create_app
from salvage.db import DatabaseUnavailable
from tests.cds_hooks.conftest import BASE, fixture_prefetch, hook_body, signed, write_clients
from tests.support_sandbox import free_port

R_CHOP = ["rituximab", "cyclophosphamide", "doxorubicin", "vincristine", "prednisone"]
SIGN = "salvage-order-sign"


@pytest.fixture
def app(tmp_path: Path):  # type: ignore[no-untyped-def]
    return create_app(
        {
            "TESTING": True,
            "BASE_URL": BASE,
            "CDS_CLIENTS": str(write_clients(tmp_path / "clients.json")),
            "DATABASE_URL": str(tmp_path / "salvage.db"),
        }
    )


def _post(app, path: str, body: object):  # type: ignore[no-untyped-def]
    return app.test_client().post(
        path,
        data=json.dumps(body),
        headers={"Authorization": f"Bearer {signed(path)}"},
        content_type="application/json",
    )


def _sign(app):  # type: ignore[no-untyped-def]
    body = hook_body(
        "order-sign", "dlbcl-early-relapse", R_CHOP, fixture_prefetch("dlbcl-early-relapse")
    )
    return _post(app, f"/cds-services/{SIGN}", body)


def test_a_read_only_database_is_a_503_with_a_clear_body(app) -> None:
    db = app.extensions["salvage_db"]
    db._connect().execute("PRAGMA query_only = ON")  # this thread's connection: no writes
    reply = _sign(app)
    assert reply.status_code == 503
    assert "database is unavailable" in reply.get_json()["error"]


def test_cards_are_returned_when_only_their_audit_row_cannot_be_written(app, caplog) -> None:
    db = app.extensions["salvage_db"]
    db.execute(
        "CREATE TRIGGER full BEFORE INSERT ON cds_card BEGIN SELECT RAISE(FAIL, 'full'); END"
    )
    reply = _sign(app)
    assert reply.status_code == 200
    assert [c["indicator"] for c in reply.get_json()["cards"]] == ["warning"]
    assert "not recorded" in caplog.text


def test_feedback_that_cannot_be_stored_is_a_503(app) -> None:
    db = app.extensions["salvage_db"]
    db.execute(
        "CREATE TRIGGER full BEFORE INSERT ON cds_feedback BEGIN SELECT RAISE(FAIL, 'x'); END"
    )
    item = {"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-11-26T10:00:00Z"}
    reply = _post(app, f"/cds-services/{SIGN}/feedback", {"feedback": [item]})
    assert reply.status_code == 503 and reply.get_json()["error"]


def test_a_database_that_cannot_be_opened_is_named_at_start_up(tmp_path) -> None:
    with pytest.raises(DatabaseUnavailable, match=str(tmp_path)):
        create_app({"DATABASE_URL": str(tmp_path), "INSTANCE_PATH": str(tmp_path / "i")})


def test_salvage_serve_refuses_to_start_naming_the_database(tmp_path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    wanted = blocker / "salvage.db"
    env = {
        **os.environ,
        "SALVAGE_DATABASE_URL": str(wanted),
        "SALVAGE_SECRET_KEY": "k",
    }
    result = subprocess.run(
        [sys.executable, "-m", "salvage.cli", "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert str(wanted) in result.stderr and "Traceback" not in result.stderr
