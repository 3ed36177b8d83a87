"""An old driving failure is shown on the screen with a request to confirm the disease status
(ux finding 2)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from salvage import service
from salvage.app import create_app
from smart_app.summary import summarise
from tests.conftest import FIXTURES
from tests.support_screen import screen_html

KB = service.knowledge_base()


def test_the_screen_shows_it(tmp_path: Path) -> None:
    bundle = json.loads((FIXTURES / "dlbcl-early-relapse.json").read_text())
    today = date(2026, 6, 1)
    summary = summarise(
        [e["resource"] for e in bundle["entry"]], "dlbcl-early-relapse", KB, [], today
    )
    (patient,) = summary["patients"]
    app = create_app({"TESTING": True, "DATABASE_URL": str(tmp_path / "d.db")})
    html = screen_html(app, summary, patient, today)
    shown = html.split('id="stale-failure"', 1)[1].split("</p>", 1)[0]
    assert "The last documented failure (relapse of line 1 on 2023-11-20) is 2 years old" in shown
