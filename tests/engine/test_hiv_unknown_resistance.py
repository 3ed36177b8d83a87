"""An HIV regimen offered while no drug in it is known to be fully active says that a genotype
is needed before choosing (ux finding 1); one with known active drugs does not."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from salvage import service
from salvage.fhir.records import build_patient_records

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
KB = service.knowledge_base()


def _options(name: str):  # type: ignore[no-untyped-def]
    bundle = json.loads((FIXTURES / f"{name}.json").read_text())
    patients, _ = build_patient_records(((e["resource"], name) for e in bundle["entry"]), KB)
    (record,) = patients.values()
    return service.report_for_record(record, KB, date(2026, 6, 1)).recommendation.options


@pytest.mark.parametrize("name", ["hiv-cabrpv-no-genotype", "hiv-virologic-failure"])
def test_a_regimen_without_a_known_active_drug_asks_for_a_genotype(name: str) -> None:
    regimens = [o for o in _options(name) if getattr(o, "kind", "") == "regimen"]
    assert regimens
    for option in regimens:
        assert option.fully_active == 0
        assert option.recheck == (KB.hiv.no_active_drug_recheck,)
    assert "genotype is needed before choosing" in KB.hiv.no_active_drug_recheck


def test_a_regimen_with_known_active_drugs_carries_no_such_recheck() -> None:
    options = _options("hiv-kaletra-failure")
    assert options and all(o.fully_active >= 1 for o in options)
    assert all(KB.hiv.no_active_drug_recheck not in o.recheck for o in options)
