"""DrugExposure, Measurement and Line are msgspec Structs (built once per resource or several
times per patient, see model.py); they keep the record contract of the engine's other types:
keyword-only, frozen, equal and hashed by value, picklable (population mode sends reports between
processes)."""

from __future__ import annotations

import pickle
from datetime import date

import msgspec
import pytest

from salvage.engine.model import DrugExposure, Line, Measurement


def _exposure(**changes: object) -> DrugExposure:
    fields: dict[str, object] = {
        "source": "MedicationAdministration/1",
        "ingredients": frozenset({"rituximab"}),
        "start": date(2024, 1, 2),
        "end": date(2024, 1, 2),
        "status": "completed",
        "dose": 375.0,
        "dose_unit": "mg/m2",
    }
    return DrugExposure(**{**fields, **changes})  # type: ignore[arg-type]


def test_exposure_is_frozen_keyword_only_and_has_the_documented_defaults() -> None:
    exposure = _exposure()
    with pytest.raises(AttributeError):
        exposure.status = "stopped"  # type: ignore[misc]
    with pytest.raises(TypeError):
        DrugExposure("x", frozenset(), date(2024, 1, 1), None, "active")  # type: ignore[call-arg]
    assert (exposure.active, exposure.stop_reasons, exposure.based_on, exposure.intent) == (
        False,
        frozenset(),
        (),
        None,
    )


def test_records_compare_and_hash_by_value_and_survive_pickle() -> None:
    one, same, other = _exposure(), _exposure(), _exposure(dose=500.0)
    assert one == same and hash(one) == hash(same)
    assert one != other
    assert len({one, same, other}) == 2
    assert pickle.loads(pickle.dumps(one)) == one  # noqa: S301 (our own bytes)
    measurement = Measurement(
        source="Observation/1", kind="hiv-rna", when=date(2024, 1, 2), value=20.0, comparator="<"
    )
    assert pickle.loads(pickle.dumps(measurement)) == measurement  # noqa: S301
    assert measurement.readable and measurement.focus == () and not measurement.detected
    assert measurement != Measurement(
        source="Observation/1", kind="hiv-rna", when=date(2024, 1, 2), value=20.0
    )


def test_a_line_completed_by_replace_is_a_new_value_the_original_unchanged() -> None:
    line = Line(
        number=1,
        regimen="R-CHOP",
        ingredients=("rituximab",),
        start=date(2024, 1, 2),
        end=None,
        last_active=date(2024, 3, 1),
        maintenance=False,
        sources=("MedicationAdministration/1",),
        domain="oncology",
    )
    done = msgspec.structs.replace(line, best_response="complete", number=2)
    assert (line.best_response, line.number) == ("unknown", 1)
    assert (done.best_response, done.number, done.regimen) == ("complete", 2, "R-CHOP")
    assert done != line and msgspec.structs.replace(done, best_response="unknown", number=1) == line
    assert pickle.loads(pickle.dumps(done)) == done  # noqa: S301 (our own bytes)
