"""The screen renders what each option says about itself from a real analysis at a fixed date:
intent, evidence level, rank reasons, fits and not checked, inferred facts, and the goals-of-care
prompt; record and knowledge text stays escaped in every new place (issue 15 items 6 and 7)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from flask import render_template

from salvage import service
from salvage.app import create_app
from smart_app import chart, screen, summary

BUNDLES = Path(__file__).resolve().parents[1] / "onc_review_bundles"
EVIL = '<script>alert("x")</script>'


def _page(tmp_path, name: str, as_of: date, patient_id: str, edit=None) -> str:
    bundle = json.loads((BUNDLES / name).read_text())
    resources = [e["resource"] for e in bundle["entry"]]
    kb = service.knowledge_base("")
    document = summary.summarise(resources, patient_id, kb, [], as_of)
    patient = document["patients"][0]
    if edit:
        edit(patient)
    timeline, markers = screen.charts(patient, as_of)
    app = create_app({"TESTING": True, "DATABASE_URL": str(tmp_path / "d.db")})
    with app.test_request_context("/app"):
        return render_template(
            "app.html",
            summary=document,
            p=patient,
            timeline=timeline,
            markers=markers,
            focus=None,
            need_banner=False,
            user=None,
            chart=chart,
        )


def test_an_assumed_transplant_candidacy_is_marked_inferred_on_the_screen(tmp_path) -> None:
    html = _page(tmp_path, "onc02-dlbcl-late-relapse-fit.json", date(2024, 2, 25), "onc02")
    assert "assumed, not on record" in html
    assert '<span class="inferred">inferred: assumed, not on record: DLCO' in html
    assert '<span class="inferred">inferred: transplant candidate: assumed' in html
    assert 'class="tag intent">curative intent</span>' in html
    assert 'class="tag level">evidence: randomised phase 3</span>' in html
    assert "<strong>Why rank 1:</strong> in the pathway&#39;s order for this failure" in html


def test_the_goals_of_care_prompt_is_on_the_screen_after_two_failed_lines(tmp_path) -> None:
    html = _page(
        tmp_path, "onc17-dlbcl-third-line-cart-naive-after-asct.json", date(2024, 6, 20), "onc17"
    )
    assert 'id="goals-of-care"' in html and "lines have failed" in html


def test_new_option_text_is_escaped(tmp_path) -> None:
    def poison(patient: dict) -> None:
        option = patient["options"][0]
        for key in ("intent_label", "evidence_level"):
            option[key] = EVIL
        for key in ("rank_reasons", "fits_because", "not_checked", "inferred"):
            option[key] = [EVIL]
        patient["inferred"] = [EVIL]
        patient["goals_of_care"] = {"text": EVIL, "because": [EVIL], "evidence": []}

    html = _page(tmp_path, "onc02-dlbcl-late-relapse-fit.json", date(2024, 2, 25), "onc02", poison)
    assert "<script>" not in html and html.count("&lt;script&gt;") >= 8
