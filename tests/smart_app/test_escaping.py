"""Record text is escaped everywhere on the screen (no script injection through a drug name)."""

from __future__ import annotations

from datetime import date

from salvage.app import create_app
from smart_app import chart

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_record_text_is_escaped_in_the_page(tmp_path) -> None:
    app = create_app({"TESTING": True, "DATABASE_URL": str(tmp_path / "d.db")})
    patient = {
        "patient": "Patient/p1",
        "banner": {"name": EVIL, "birthDate": "", "gender": "", "id": "p1"},
        "diseases": [],
        "lines": [
            {
                "number": 1,
                "regimen": EVIL,
                "ingredients": [EVIL],
                "start": "2024-01-01",
                "end": "2024-02-01",
                "maintenance": False,
                "sources": [EVIL],
            }
        ],
        "failures": [],
        "unmapped": [{"source": "X/1", "text": EVIL}],
        "options": [],
        "excluded": [],
        "missing_data": [EVIL],
        "disclaimer": "decision support",
        "data_gaps": [{"type": "Observation", "problem": EVIL, "affects": EVIL}],
        "statement": EVIL,
        "exposures": [],
        "measurements": [],
        "not_assessed": [EVIL],
        "facts": [EVIL],
        "transplant_eligibility": {"summary": EVIL, "missing": [EVIL], "not_checked": []},
        "procedures": [
            {
                "source": EVIL,
                "kind": "radiotherapy",
                "label": EVIL,
                "start": "2024-01-02",
                "end": "2024-01-20",
            }
        ],
    }
    patient["options"] = [
        {
            "rank": 1,
            "regimen": EVIL,
            "intent": EVIL,
            "evidence_level": EVIL,
            "setting": EVIL,
            "rank_reasons": [EVIL],
            "rationale": [EVIL],
            "cautions": [EVIL],
            "evidence": [{"label": EVIL, "url": "https://e.org/"}],
            "sources": [EVIL],
        }
    ]
    patient["failures"] = [
        {"kind": EVIL, "date": "2024-03-01", "line": 1, "detail": EVIL, "sources": [EVIL]}
    ]
    timeline = chart.timeline(
        patient["lines"],
        patient["failures"],
        [],
        date(2024, 6, 1),
        procedures=patient["procedures"],
    )
    with app.test_request_context("/app"):
        from flask import render_template

        html = render_template(
            "app.html",
            summary={"kb_version": "v", "as_of": "2024-06-01"},
            p=patient,
            timeline=timeline,
            markers=[],
            focus={"focus": EVIL},
            need_banner=True,
            user=EVIL,
            chart=chart,
        )
    assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html


def test_a_failure_after_the_loading_state_ends_the_page_with_a_message(tmp_path) -> None:
    from flask import render_template

    app = create_app({"TESTING": True, "DATABASE_URL": str(tmp_path / "d.db")})
    with app.test_request_context("/app"):
        html = render_template("app_failed.html", message=EVIL)
    assert 'id="result"' in html and "&lt;script&gt;" in html and html.rstrip().endswith("</html>")
