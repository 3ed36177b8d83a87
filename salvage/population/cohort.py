"""Cohort analytics (`salvage cohort`): one row per line of therapy and per failure, and a summary
(regimen sequences, time to next treatment and time on treatment by Kaplan-Meier, failure rates,
failures without a new line within the disease's delay threshold).

Every patient becomes one entry through `patient_entry` (the same function in the single-process
and the Spark modes); `build_cohort` turns entries, in patient order, into tables and a summary, so
both modes write the same files.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from salvage import output
from salvage.knowledge import KnowledgeBase
from salvage.service import PatientReport

LINE_COLUMNS = (
    "patient",
    "disease",
    "number",
    "regimen",
    "ingredients",
    "start",
    "end",
    "maintenance",
    "consolidation",
    "consolidation_regimen",
    "best_response",
    "intent",
    "domain",
)
FAILURE_COLUMNS = (
    "patient",
    "disease",
    "kind",
    "date",
    "line",
    "primary",
    "relapse_interval_months",
    "closed_on",
    "next_line_start",
    "days_to_next_line",
    "delay_threshold_days",
    "switch_late",
)
SEQUENCE_ARROW = " -> "
TOP_SEQUENCES = 15


def last_record_date(report: PatientReport) -> date:
    """The latest date the record holds (censoring date of the time-to-event summaries), never
    after the analysis date."""
    record = report.analysis.record
    dates: list[date] = []
    for e in record.exposures:
        dates.append(e.start)
        if e.end:
            dates.append(e.end)
    dates += [m.when for m in record.measurements]
    for c in record.conditions:
        dates += [d for d in (c.when, c.recorded, c.abatement) if d]
    dates += [p.end for p in record.procedures]
    dates += [g.when for g in record.genotypes if g.when]
    for line in report.analysis.lines:
        dates.append(line.last_active)
    dates += [f.when for f in report.analysis.failures]
    latest = max(dates, default=report.as_of)
    return min(latest, report.as_of)


def patient_entry(report: PatientReport) -> dict[str, Any]:
    """What the cohort keeps of one patient: the documented lines JSON (keys other helpers add to
    a line, such as consolidation or best_response, come along) and the censoring date."""
    document = output.patient_lines_json(report.analysis)
    return {
        "patient": report.patient,
        "lines": document["lines"],
        "failures": document["failures"],
        "last_record_date": last_record_date(report).isoformat(),
    }


@dataclass
class Cohort:
    lines: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    summary: dict[str, Any]
    curves: dict[str, dict[str, list[tuple[float, float]]]]  # measure -> regimen -> KM points


def _days(later: str | None, earlier: str | None) -> int | None:
    if not later or not earlier:
        return None
    return (date.fromisoformat(later) - date.fromisoformat(earlier)).days


def _text(value: Any) -> str | None:
    """A value read defensively from a line's JSON: None, a string, or a short rendering."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("regimen", "label", "kind", "code", "response", "value"):
            if isinstance(value.get(key), str):
                return str(value[key])
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def build_cohort(entries: Iterable[dict[str, Any]], kb: KnowledgeBase, as_of: date) -> Cohort:
    rule = kb.order_checks.delay
    lines: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    sequences: dict[str, Counter[str]] = defaultdict(Counter)
    ttnt: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    tot: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    treated: dict[str, set[str]] = defaultdict(set)
    failed: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    late: dict[str, dict[str, int]] = defaultdict(lambda: {"failures": 0, "late": 0, "patients": 0})
    patients = 0
    for entry in entries:
        patients += 1
        patient = entry["patient"]
        censor = entry["last_record_date"]
        by_disease: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for line in entry["lines"]:
            disease = line.get("disease") or "unknown"
            lines.append(
                {
                    "patient": patient,
                    "disease": disease,
                    "number": line["number"],
                    "regimen": line["regimen"],
                    "ingredients": "; ".join(line.get("ingredients") or []),
                    "start": line["start"],
                    "end": line.get("end"),
                    "maintenance": bool(line.get("maintenance")),
                    "consolidation": _text(line.get("consolidation")),
                    "consolidation_regimen": _text(line.get("consolidation_regimen")),
                    "best_response": _text(line.get("best_response")),
                    "intent": _text(line.get("intent")),
                    "domain": line.get("domain"),
                }
            )
            treated[disease].add(patient)
            if line.get("maintenance"):
                continue
            by_disease[disease].append(line)
            ended = line.get("end")
            duration = _days(ended or censor, line["start"])
            tot[line["regimen"]].append((max(duration or 0, 0), ended is not None))
        for disease, own in sorted(by_disease.items()):
            own.sort(key=lambda item: (item["number"], item["start"]))
            sequences[disease][SEQUENCE_ARROW.join(item["regimen"] for item in own)] += 1
            for index, line in enumerate(own):
                following = own[index + 1] if index + 1 < len(own) else None
                if following is not None:
                    days = _days(following["start"], line["start"])
                    ttnt[line["regimen"]].append((max(days or 0, 0), True))
                else:
                    days = _days(censor, line["start"])
                    ttnt[line["regimen"]].append((max(days or 0, 0), False))
        patient_late: set[str] = set()
        for f in entry["failures"]:
            disease = f.get("disease") or "unknown"
            threshold = rule.days_by_disease.get(disease, rule.default_days)
            next_start = min(
                (
                    item["start"]
                    for item in by_disease.get(disease, [])
                    if item["start"] > f["date"]
                ),
                default=None,
            )
            waited = _days(next_start, f["date"])
            follow_up = _days(censor, f["date"]) or 0
            switch_late: bool | None
            if waited is not None:
                switch_late = waited > threshold
            elif follow_up > threshold or (as_of - date.fromisoformat(f["date"])).days > threshold:
                switch_late = True
            else:
                switch_late = None  # too recent to say
            failures.append(
                {
                    "patient": patient,
                    "disease": disease,
                    "kind": f["kind"],
                    "date": f["date"],
                    "line": f.get("line"),
                    "primary": bool(f.get("primary")),
                    "relapse_interval_months": f.get("relapse_interval_months"),
                    "closed_on": (f.get("closed") or {}).get("date"),
                    "next_line_start": next_start,
                    "days_to_next_line": waited,
                    "delay_threshold_days": threshold,
                    "switch_late": switch_late,
                }
            )
            failed[disease][f["kind"]].add(patient)
            if switch_late is not None:
                late[disease]["failures"] += 1
                if switch_late:
                    late[disease]["late"] += 1
                    patient_late.add(disease)
        for disease in patient_late:
            late[disease]["patients"] += 1
    summary, curves = _summary(patients, sequences, ttnt, tot, treated, failed, late)
    summary["as_of"] = as_of.isoformat()
    summary["kb_version"] = kb.version
    return Cohort(lines=lines, failures=failures, summary=summary, curves=curves)


def _summary(
    patients: int,
    sequences: dict[str, Counter[str]],
    ttnt: dict[str, list[tuple[int, bool]]],
    tot: dict[str, list[tuple[int, bool]]],
    treated: dict[str, set[str]],
    failed: dict[str, dict[str, set[str]]],
    late: dict[str, dict[str, int]],
) -> tuple[dict[str, Any], dict[str, dict[str, list[tuple[float, float]]]]]:
    from salvage.population.survival import kaplan_meier

    curves: dict[str, dict[str, list[tuple[float, float]]]] = {
        "time_to_next_treatment": {},
        "time_on_treatment": {},
    }
    measures: dict[str, list[dict[str, Any]]] = {}
    for name, data in (("time_to_next_treatment", ttnt), ("time_on_treatment", tot)):
        rows = []
        for regimen in sorted(data):
            estimate = kaplan_meier(data[regimen])
            curves[name][regimen] = estimate.points
            rows.append(
                {
                    "regimen": regimen,
                    "n": estimate.n,
                    "events": estimate.events,
                    "censored": estimate.n - estimate.events,
                    "median_days": estimate.median,
                }
            )
        measures[name] = rows
    rates = {}
    for disease in sorted(treated):
        n = len(treated[disease])
        rates[disease] = {
            "patients_treated": n,
            "by_kind": {
                kind: {"patients": len(who), "rate": round(len(who) / n, 4)}
                for kind, who in sorted(failed.get(disease, {}).items())
            },
        }
    summary = {
        "patients": patients,
        "patients_with_lines": len(set().union(*treated.values())) if treated else 0,
        "sequences": {
            disease: [
                {"sequence": seq, "patients": count}
                for seq, count in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[
                    :TOP_SEQUENCES
                ]
            ]
            for disease, counter in sorted(sequences.items())
        },
        "time_to_next_treatment": measures["time_to_next_treatment"],
        "time_on_treatment": measures["time_on_treatment"],
        "failure_rates": rates,
        "late_switch": {disease: dict(values) for disease, values in sorted(late.items())},
    }
    return summary, curves
