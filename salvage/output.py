"""Shape engine results as the documented JSON (keys may be added, never renamed or removed)."""

from __future__ import annotations

from typing import Any

from salvage.engine.analysis import PatientAnalysis
from salvage.engine.model import Failure, Line
from salvage.engine.records import Skipped


def line_json(line: Line) -> dict[str, Any]:
    return {
        "number": line.number,
        "regimen": line.regimen,
        "ingredients": sorted(line.ingredients),
        "start": line.start.isoformat(),
        "end": line.end.isoformat() if line.end else None,
        "maintenance": line.maintenance,
        "sources": list(line.sources),
        "domain": line.domain,
        **({"procedure": line.procedure} if line.procedure else {}),
    }


def failure_json(failure: Failure) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": failure.kind,
        "date": failure.when.isoformat(),
        "line": failure.line,
        "sources": list(failure.sources),
        "detail": failure.detail,
        "evidence": list(failure.evidence),
    }
    if failure.relapse_interval_months is not None:
        out["relapse_interval_months"] = failure.relapse_interval_months
    return out


def patient_lines_json(analysis: PatientAnalysis) -> dict[str, Any]:
    return {
        "patient": analysis.patient,
        "diseases": list(analysis.diseases),
        "lines": [line_json(line) for line in analysis.lines],
        "failures": [failure_json(f) for f in analysis.failures],
        "unmapped": [{"source": u.source, "text": u.text} for u in analysis.unmapped],
        "warnings": [{"source": w.source, "problem": w.problem} for w in analysis.warnings],
    }


def skipped_json(skipped: list[Skipped]) -> list[dict[str, str]]:
    return [{"origin": s.origin, "resource": s.resource, "reason": s.reason} for s in skipped]
