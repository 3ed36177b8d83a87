"""An old driving failure asks to confirm the current disease status (ux finding 2): beyond the
institution's stale_failure_days (order_checks.yaml), in missing data, the JSON, the screen and
the cards."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from salvage import output, service
from salvage.engine import failure_age
from salvage.engine.model import Failure
from salvage.knowledge import load_knowledge

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
KB = service.knowledge_base()
RELAPSE = date(2023, 11, 20)  # dlbcl-early-relapse's relapse of line 1


def _failure(when: date, line: int | None = 2) -> Failure:
    return Failure(kind="relapse", when=when, line=line, sources=(), detail="", evidence=())


@pytest.mark.parametrize(
    ("days", "expected"),
    [(365, None), (366, "is 1 year old"), (2 * 365 + 1, "is 2 years old")],
)
def test_the_failure_is_stale_only_beyond_the_institution_limit(days: int, expected) -> None:
    assert KB.order_checks.delay.stale_failure_days == 365
    text = failure_age.stale_failure(_failure(RELAPSE), KB, RELAPSE + timedelta(days=days))
    if expected is None:
        assert text is None
    else:
        assert text is not None and expected in text
        assert "relapse of line 2 on 2023-11-20" in text
        assert text.endswith("confirm the current disease status")


def test_an_overlay_sets_another_limit(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("institution: Test\ndelay:\n  stale_failure_days: 90\n")
    local = load_knowledge(None, str(overlay))
    text = failure_age.stale_failure(_failure(RELAPSE, None), local, RELAPSE + timedelta(days=100))
    assert text is not None and "is 3 months old" in text and "of line" not in text


def _report(as_of: date):  # type: ignore[no-untyped-def]
    bundle = json.loads((FIXTURES / "dlbcl-early-relapse.json").read_text())
    resources = [(e["resource"], "f") for e in bundle["entry"]]
    report, _ = service.report_for_resources(resources, "Patient/dlbcl-early-relapse", KB, as_of)
    assert report is not None
    return report


def test_missing_data_and_json_say_the_failure_is_old() -> None:
    rec = _report(date(2026, 6, 1)).recommendation
    assert rec.stale_failure and "is 2 years old" in rec.stale_failure
    assert rec.missing_data[0] == rec.stale_failure
    assert output.recommendation_json(rec, KB)["stale_failure"] == rec.stale_failure
    fresh = _report(RELAPSE + timedelta(days=60)).recommendation
    assert fresh.stale_failure is None
    assert output.recommendation_json(fresh, KB)["stale_failure"] is None
