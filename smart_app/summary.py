"""Compose the engine's analysis of the launched patient: the `salvage recommend --json` shape plus
what could not be read, and the data the screen's charts need."""

from __future__ import annotations

from datetime import date
from typing import Any

from salvage import output, service
from salvage.knowledge.model import KnowledgeBase
from smart_app.banner import patient_banner


def summarise(
    resources: list[dict[str, Any]],
    patient_id: str,
    kb: KnowledgeBase,
    problems: list[dict[str, str]],
    today: date,
) -> dict[str, Any]:
    unreadable = frozenset(p["type"] for p in problems if p.get("type"))
    report, skipped = service.report_for_patient(
        resources, patient_id, kb, today, unreadable=unreadable
    )
    record = report.analysis.record
    entry = {
        **output.patient_lines_json(report.analysis),
        **output.recommendation_json(report.recommendation, kb),
    }
    entry["markers"] = [
        {
            "kind": m.spec.kind,
            "label": m.spec.label,
            "unit": m.spec.unit,
            "log_scale": m.spec.log_scale,
            "floor": m.spec.floor,
            "points": [
                {"date": day.isoformat(), "value": value, "source": source}
                for day, value, source in m.points
            ],
            "thresholds": [{"value": t.value, "label": t.label} for t in m.thresholds],
            "note": m.note,
        }
        for m in report.markers
    ]
    entry["reminders"] = [
        {"kind": f.kind, "severity": f.severity, "summary": f.summary}
        for f in report.delay_findings
    ]
    entry["data_gaps"] = problems
    entry["failure_assessable"] = report.analysis.failure_assessable
    entry["banner"] = patient_banner(
        next(
            (
                r
                for r in resources
                if r.get("resourceType") == "Patient" and r.get("id") == patient_id
            ),
            None,
        )
    )
    entry["skipped"] = output.skipped_json(skipped)
    entry["exposures"] = [
        {
            "source": e.source,
            "ingredients": sorted(e.ingredients),
            "start": e.start.isoformat(),
            "end": e.end.isoformat() if e.end else None,
        }
        for e in record.exposures
    ]
    entry["procedures"] = [
        {
            "source": p.source,
            "kind": p.kind,
            "label": p.label,
            "start": p.when.isoformat(),
            "end": p.end.isoformat(),
        }
        for p in record.procedures
    ]
    entry["measurements"] = [
        {
            "source": m.source,
            "kind": m.kind,
            "date": m.when.isoformat(),
            "value": m.value,
            "raw": m.raw,
            "shown": m.shown or m.raw,
        }
        for m in record.measurements
        if m.value is not None
    ]
    return {"kb_version": kb.version, "as_of": today.isoformat(), "patients": [entry]}
