"""Shape engine results as the documented JSON (keys may be added, never renamed or removed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from salvage.engine.analysis import PatientAnalysis
from salvage.engine.hiv_regimens import HivOption
from salvage.engine.model import Failure, Line
from salvage.engine.recommend import Option, Recommendation
from salvage.fhir.records import Skipped
from salvage.knowledge.model import KnowledgeBase


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
        "disease": line.disease,
        **({"procedure": line.procedure} if line.procedure else {}),
        "intent": line.intent,
        **({"intent_basis": line.intent_basis} if line.intent_basis else {}),
        **(
            {
                "consolidation": line.consolidation,
                "consolidation_regimen": line.consolidation_regimen,
                "consolidation_ingredients": list(line.consolidation_ingredients),
            }
            if line.consolidation
            else {}
        ),
        **(
            {
                "accompanying": [
                    {"role": role, "drug": drug, "source": source}
                    for role, drug, source in line.accompanying
                ]
            }
            if line.accompanying
            else {}
        ),
        "best_response": line.best_response,
        "response_sources": list(line.response_sources),
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
    out["disease"] = failure.disease
    if failure.primary:
        out["primary"] = True  # primary refractory (kind stays 'refractory')
    if failure.closed_by:
        out["closed"] = {
            "date": failure.closed_on.isoformat() if failure.closed_on else None,
            "sources": list(failure.closed_by),
        }
    return out


def patient_lines_json(analysis: PatientAnalysis) -> dict[str, Any]:
    return {
        "patient": analysis.patient,
        "diseases": list(analysis.diseases),
        "lines": [line_json(line) for line in analysis.lines],
        "failures": [failure_json(f) for f in analysis.failures],
        "unmapped": [{"source": u.source, "text": u.text} for u in analysis.unmapped],
        "partly_recognised": [
            {
                "source": p.source,
                "text": p.text,
                "recognised": list(p.recognised),
                "not_recognised": list(p.not_recognised),
            }
            for p in analysis.record.partly_recognised
        ],
        "warnings": [{"source": w.source, "problem": w.problem} for w in analysis.warnings],
        "active_diseases": list(analysis.active_diseases),
        "not_assessed": list(analysis.not_assessed),
        "notes": list(analysis.notes),
        "cautions": list(analysis.cautions),
        "anthracycline_dose": _anthracycline_json(analysis),
    }


def _anthracycline_json(analysis: PatientAnalysis) -> dict[str, Any] | None:
    """Every anthracycline dose counted (with the kind of record it comes from), the total in
    reference-drug mg/m2, and whether it is a lower bound or unknown; None when none was given."""
    total = analysis.anthracycline
    if total is None:
        return None
    return {
        "total_mg_m2": round(total.total, 1) if total.known else None,
        "at_least": total.at_least,
        "known": total.known,
        "text": analysis.anthracycline_text,
        "doses": [
            {
                "source": d.source,
                "kind": d.kind,
                "drug": d.drug,
                "date": d.day.isoformat(),
                "dose": d.dose,
                "unit": d.unit,
                "count": d.count,
                "mg_m2": None if d.mg_m2 is None else round(d.mg_m2, 1),
                "equivalent_mg_m2": None
                if d.equivalent_mg_m2 is None
                else round(d.equivalent_mg_m2, 1),
                "bsa_m2": None if d.bsa_m2 is None else round(d.bsa_m2, 3),
                "bsa_sources": list(d.bsa_sources),
                "problem": d.problem,
                "count_known": d.count_known,
            }
            for d in total.doses
        ],
        "undocumented": list(total.undocumented),
    }


def skipped_json(skipped: list[Skipped]) -> list[dict[str, str]]:
    return [{"origin": s.origin, "resource": s.resource, "reason": s.reason} for s in skipped]


def _hiv_option_json(option: HivOption) -> dict[str, Any]:
    """HIV options also carry each drug's activity and the count of fully active drugs."""
    return {
        "fully_active": option.fully_active,
        "unknown_activity": option.unknown_activity,
        "construct": option.construct,
        "companions": list(option.companions),
        "summary": list(option.summary),
        "activity": [
            {
                "drug": a.drug,
                "level": a.level,
                "mutations": list(a.mutations),
                "basis": a.basis,
                "sources": list(a.sources),
            }
            for a in option.activity
        ],
    }


def _option_json(o: Option, evidence: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    return {
        "rank": o.rank,
        "id": o.option_id,
        "regimen": o.regimen,
        "kind": o.kind,
        "ingredients": list(o.ingredients),
        "setting": o.setting,
        "rationale": list(o.rationale),
        "cautions": list(o.cautions),
        "evidence": [evidence(k) for k in o.evidence],
        "sources": list(o.sources),
        "branch": o.branch,
        "recheck": list(o.recheck),
        "intent": o.intent,
        "intent_label": o.intent_label,
        "evidence_level": o.evidence_level,
        "rank_reasons": list(o.rank_reasons),
        "fits_because": list(o.fits_because),
        "not_checked": list(o.not_checked),
        "inferred": list(o.inferred),
        "set_aside": list(o.set_aside),
        **(_hiv_option_json(o) if isinstance(o, HivOption) else {}),
    }


def recommendation_json(rec: Recommendation, kb: KnowledgeBase) -> dict[str, Any]:
    def evidence(key: str) -> dict[str, Any]:
        e = kb.evidence[key]
        return {
            "label": e.label,
            "citation": e.citation,
            "url": e.url,
            **({"doi": e.doi} if e.doi else {}),
            **({"pmid": e.pmid} if e.pmid else {}),
            **({"level": e.level} if e.level else {}),
            **({"year": e.year} if e.year else {}),
        }

    out: dict[str, Any] = {
        "patient": rec.patient,
        "disease": rec.disease,
        "current_plan": line_json(rec.current_plan) if rec.current_plan else None,
        "failure": (
            {
                "kind": rec.failure.kind,
                "date": rec.failure.when.isoformat(),
                "line": rec.failure.line,
                "sources": list(rec.failure.sources),
                "disease": rec.failure.disease,
                **({"primary": True} if rec.failure.primary else {}),
            }
            if rec.failure
            else None
        ),
        "options": [_option_json(o, evidence) for o in rec.options],
        # the step after a responding salvage regimen (transplant consolidation), not ranked
        **(
            {"after_salvage": [_option_json(o, evidence) for o in rec.after_salvage]}
            if rec.after_salvage
            else {}
        ),
        "excluded": [
            {"regimen": x.regimen, "id": x.option_id, "reasons": list(x.reasons)}
            for x in rec.excluded
        ],
        "missing_data": list(rec.missing_data),
        "stale_failure": rec.stale_failure,
        "facts": list(rec.facts),
        "not_assessed": list(rec.not_assessed),
        "transplant_eligibility": (
            {
                "status": rec.transplant.status,
                "summary": rec.transplant.summary(),
                "reasons": list(rec.transplant.reasons),
                "missing": list(rec.transplant.missing),
                "unreadable": list(rec.transplant.unreadable),
                "recheck": list(rec.transplant.rechecks),
                "not_checked": list(rec.transplant.not_checked),
                "evidence": [evidence(k) for k in rec.transplant.evidence],
            }
            if rec.transplant
            else None
        ),
        "disclaimer": kb.disclaimer_for(rec.disease),
        "inferred": list(rec.inferred),
        "goals_of_care": (
            {
                "text": rec.goals_of_care,
                "because": list(rec.goals_of_care_because),
                "evidence": [evidence(k) for k in rec.goals_of_care_evidence],
            }
            if rec.goals_of_care
            else None
        ),
    }
    if rec.statement:
        out["statement"] = rec.statement
    return out
