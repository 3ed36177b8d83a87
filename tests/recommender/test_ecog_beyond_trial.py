"""A targeted agent for a driver alteration at an ECOG just above its trial's limit (KRAS G12C
after chemo-immunotherapy, sotorasib and adagrasib: ECOG 0-1 in CodeBreaK 200 and KRYSTAL-12)
stays offered with a cited caution (pathways.yaml when.ecog_beyond_trial: caution; ESMO 2023),
while chemotherapy whose trial limit is exceeded is still ruled out, and a worse ECOG still
excludes the targeted agent. Built on the st08 bundle with its ECOG Observation changed."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from salvage import service

HERE = Path(__file__).resolve().parents[1] / "solid_tumour_bundles"
NAME = "st08-nsclc-kras-g12c-after-chemo-immunotherapy.json"
AS_OF = {
    n: date.fromisoformat(d)
    for n, d in (line.split() for line in (HERE / "asof.txt").read_text().splitlines())
}[NAME]


def recommend_at(tmp_path: Path, ecog: int):
    bundle = json.loads((HERE / NAME).read_text())
    for entry in bundle["entry"]:
        r = entry["resource"]
        if r["resourceType"] == "Observation" and r["id"] == "st08-obs-420":
            r["valueInteger"] = ecog
    path = tmp_path / NAME
    path.write_text(json.dumps(bundle))
    kb = service.knowledge_base("")
    (only,), _, _ = service.reports_for_files([str(path)], kb, AS_OF)
    return only.recommendation


def test_ecog_2_keeps_the_kras_inhibitors_with_a_cited_caution(tmp_path: Path) -> None:
    rec = recommend_at(tmp_path, 2)
    by_id = {o.option_id: o for o in rec.options}
    for option_id in ("nsclc-sotorasib", "nsclc-adagrasib"):
        option = by_id[option_id]
        (caution,) = [c for c in option.cautions if "outside the trial population" in c]
        assert "ECOG 0-1" in caution and "ECOG 2" in caution and "Hendriks 2023" in caution
        # the fit list does not claim the ECOG is within the trial's limit
        assert not any("within the trial's limit" in f for f in option.fits_because)
    ruled_out = {x.option_id: "; ".join(x.reasons) for x in rec.excluded}
    # docetaxel-ramucirumab (REVEL, ECOG 0-1) has no such marking: still ruled out
    assert "ECOG 0-1" in ruled_out["nsclc-doce-ram"]


def test_ecog_1_gives_no_beyond_trial_caution(tmp_path: Path) -> None:
    rec = recommend_at(tmp_path, 1)
    sotorasib = next(o for o in rec.options if o.option_id == "nsclc-sotorasib")
    assert not any("outside the trial population" in c for c in sotorasib.cautions)
    assert any("within the trial's limit of ECOG 1" in f for f in sotorasib.fits_because)


@pytest.mark.parametrize("ecog", [3, 4])
def test_ecog_3_or_worse_still_excludes_the_targeted_agent(tmp_path: Path, ecog: int) -> None:
    rec = recommend_at(tmp_path, ecog)
    assert "nsclc-sotorasib" not in {o.option_id for o in rec.options}
    ruled_out = {x.option_id: "; ".join(x.reasons) for x in rec.excluded}
    assert f"ECOG {ecog}" in ruled_out["nsclc-sotorasib"]
