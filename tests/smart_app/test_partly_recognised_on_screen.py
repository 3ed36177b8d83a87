"""Issue 11 item 1: a product recognised only in part is shown in the screen's data-gap list, with
what was counted and what was not (never silently reduced)."""

from __future__ import annotations

import json
from datetime import date

from salvage.app import create_app
from salvage.knowledge import load_knowledge
from smart_app.summary import summarise
from tests.conftest import FIXTURES
from tests.support_screen import screen_html


def test_a_partly_recognised_product_is_listed_with_the_data_gaps(tmp_path) -> None:
    bundle = json.loads((FIXTURES / "breast-combination-products.json").read_text())
    resources = [e["resource"] for e in bundle["entry"]]
    today = date(2026, 6, 30)
    summary = summarise(resources, "breast-combination-products", load_knowledge(), [], today)
    (patient,) = summary["patients"]
    app = create_app({"TESTING": True, "DATABASE_URL": str(tmp_path / "d.db")})
    html = screen_html(app, summary, patient, today)
    gaps = html.split('id="data-gaps"', 1)[1].split("</div>", 1)[0]
    assert gaps.count('class="partly-recognised"') == 3
    assert "counted as trastuzumab; not recognised: zanidatamab-investigational" in gaps
