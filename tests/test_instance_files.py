"""Workers share one secret: the first creates it, the rest read it; only the owner can read it."""

from __future__ import annotations

import stat

from salvage.app import create_app
from salvage.instance_files import shared_secret


def test_the_secret_is_created_once_and_then_read(tmp_path) -> None:
    path = tmp_path / "secret"
    first = shared_secret(path, lambda: "one")
    second = shared_secret(path, lambda: "two")
    assert first == second == "one"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_two_workers_without_a_configured_key_share_one(tmp_path) -> None:
    config = {"TESTING": True, "INSTANCE_PATH": str(tmp_path), "SECRET_KEY": None}
    first, second = create_app(config), create_app(config)  # as two gunicorn workers
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    assert len(first.config["SECRET_KEY"]) == 64
    assert (tmp_path / "secret_key").exists() and (tmp_path / "salvage.db").exists()
