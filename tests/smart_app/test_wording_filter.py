"""The counted-noun helper is a Jinja filter on the SMART screen (ux finding 5)."""

from __future__ import annotations

from pathlib import Path

from salvage.app import create_app


def test_the_screen_has_the_filter(tmp_path: Path) -> None:
    app = create_app({"TESTING": True, "DATABASE_URL": str(tmp_path / "d.db")})
    env = app.jinja_env
    assert env.from_string('{{ 1 | counted("resource") }}').render() == "1 resource"
    assert env.from_string('{{ 2 | counted("resource") }}').render() == "2 resources"
