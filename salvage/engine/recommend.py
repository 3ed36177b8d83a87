"""Salvage options after a failure: ranked, explained, with exclusions and missing data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from salvage.engine import contraindications, factors, receptors
from salvage.engine.analysis import PatientAnalysis
from salvage.engine.model import Failure
from salvage.knowledge.model import KnowledgeBase

NO_FAILURE = (
    "no documented treatment failure (refractory disease, relapse, intolerance, "
    "biochemical recurrence or virologic failure): no salvage options are suggested"
)


@dataclass(frozen=True, kw_only=True)
class Option:
    rank: int
    option_id: str
    regimen: str
    kind: str
    ingredients: tuple[str, ...]
    setting: str
    rationale: tuple[str, ...]
    cautions: tuple[str, ...]
    evidence: tuple[str, ...]
    sources: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Exclusion:
    regimen: str
    option_id: str
    reasons: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Recommendation:
    patient: str
    disease: str | None
    failure: Failure | None
    options: tuple[Option, ...]
    excluded: tuple[Exclusion, ...]
    missing_data: tuple[str, ...]
    statement: str | None = None
    facts: tuple[str, ...] = field(default_factory=tuple)


def _disease_for(
    analysis: PatientAnalysis, failure: Failure | None, kb: KnowledgeBase
) -> str | None:
    if failure is not None:
        line = next((ln for ln in analysis.lines if ln.number == failure.line), None)
        if line is not None and line.domain == "hiv":
            return "hiv"
        if failure.kind == "virologic-failure":
            return "hiv"
    return next(
        (d for d in analysis.diseases if d in kb.pathways and d != "hiv"),
        "hiv" if "hiv" in analysis.diseases else None,
    )


def _hbv_caution(hbv: Any, regimen: Any, kb: KnowledgeBase) -> tuple[str, ...]:
    """With HBV co-infection the new antiretroviral regimen keeps HBV-active drugs (DHHS)."""
    if hbv is None or regimen is None:
        return ()
    active = set(kb.patient_rules["antiretroviral"]["hbv_active_drugs"])
    tenofovir = {"tenofovir disoproxil", "tenofovir alafenamide"}
    if regimen.components & tenofovir and regimen.components & (active - tenofovir):
        return ()
    return (
        f"Hepatitis B co-infection ({hbv.source}): add tenofovir (TAF or TDF) with "
        "emtricitabine or lamivudine to this regimen; stopping HBV-active drugs can cause "
        "a hepatitis flare (DHHS)",
    )


def what_failed(
    analysis: PatientAnalysis, domain: str, backbone: frozenset[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Drugs and regimens that must not be offered again, each with the reason and its sources:
    every drug of a failed line except the disease's backbone drugs, every drug not tolerated."""
    failed_drugs: dict[str, str] = {}
    failed_regimens: dict[str, str] = {}
    for f in analysis.failures:
        line = next(
            (
                ln
                for ln in analysis.lines
                if ln.number == f.line and not ln.maintenance and ln.domain == domain
            ),
            None,
        )
        if line is None:
            continue
        why = f"{line.regimen} {f.kind} on {f.when.isoformat()} ({', '.join(f.sources)})"
        if f.kind == "intolerance":
            for e in analysis.record.exposures:
                if e.source in f.sources:
                    for drug in e.ingredients:
                        failed_drugs[drug] = (
                            f"{drug} not tolerated on {f.when.isoformat()} ({e.source})"
                        )
            continue
        failed_regimens[line.regimen] = why
        for drug in line.ingredients:
            if drug not in backbone:
                failed_drugs.setdefault(drug, f"{drug} was part of {why}")
    return failed_drugs, failed_regimens


def recommend(analysis: PatientAnalysis, kb: KnowledgeBase, as_of: date) -> Recommendation:
    failure = max(analysis.failures, key=lambda f: f.when) if analysis.failures else None
    disease = _disease_for(analysis, failure, kb)
    if disease == "hiv" and failure is not None:
        # HIV options follow resistance (hiv_regimens builds on this module's types).
        from salvage.engine import hiv_regimens

        return hiv_regimens.recommend_hiv(analysis, kb, as_of, failure)
    if failure is None or disease is None or disease not in kb.pathways:
        statement = (
            NO_FAILURE
            if failure is None
            else (f"no salvage pathway in knowledge base {kb.version} for this patient's disease")
        )
        return Recommendation(
            patient=analysis.patient,
            disease=disease,
            failure=failure,
            options=(),
            excluded=(),
            missing_data=(),
            statement=statement,
        )
    record = analysis.record
    rules = kb.patient_rules
    pathway = kb.pathways[disease]
    domain = "hiv" if disease == "hiv" else "oncology"
    failed_line = next(
        (
            ln
            for ln in analysis.lines
            if ln.number == failure.line and ln.domain == domain and not ln.maintenance
        ),
        None,
    )
    facts: list[str] = [failure.detail]
    sources: list[str] = list(failure.sources)
    missing: list[str] = []

    # Timing: early = refractory, or relapse within early_relapse_months (ZUMA-7, TRANSFORM).
    early_months = float(kb.failures["oncology"]["early_relapse_months"])
    if failure.kind == "relapse" and failure.relapse_interval_months is not None:
        timing = "early" if failure.relapse_interval_months <= early_months else "late"
        facts.append(
            f"relapse {failure.relapse_interval_months} months after the line ended: "
            f"{'within' if timing == 'early' else 'more than'} {early_months:g} months"
        )
    elif failure.kind == "refractory":
        timing = "early"
    else:
        timing = "any"

    age = factors.age_years(record, as_of)
    performance = factors.ecog(record, kb, as_of)
    clearance = factors.creatinine_clearance(record, kb, as_of)
    if performance is None and domain == "oncology":
        days = rules["recency"]["ecog_days"]
        missing.append(
            f"no ECOG performance status in the last {days} days: transplant eligibility and "
            "cisplatin use are assumed, confirm fitness"
            if disease in ("dlbcl", "hodgkin")
            else f"no ECOG performance status in the last {days} days: fitness for the options "
            "is not checked"
        )
    elif performance is not None:
        facts.append(performance.text)
        sources += performance.sources

    te = rules["transplant_eligibility"]
    ineligible_because = []
    if age is not None and age > int(te["max_age_years"]):
        ineligible_because.append(f"age {age} > {te['max_age_years']}")
    if performance is not None and performance.value > float(te["max_ecog"]):
        ineligible_because.append(f"ECOG {performance.value:g} > {te['max_ecog']}")
    transplant = "ineligible" if ineligible_because else "eligible"
    if domain == "oncology" and disease in ("dlbcl", "hodgkin"):
        facts.append(
            "not a transplant candidate: " + ", ".join(ineligible_because)
            if ineligible_because
            else f"transplant candidate by age{' and ECOG' if performance else ''}"
        )

    failed_drugs, failed_regimens = what_failed(analysis, domain, pathway["backbone_drugs"])

    overlay = rules.get("overlay") or {}
    rerank: dict[str, int] = overlay.get("rerank", {})
    disabled = set(overlay.get("disable", []))
    failed_lines = len({f.line for f in analysis.failures if f.kind == failure.kind})
    # The local therapy that failed decides the prostate pathway (prostatectomy vs radiotherapy).
    previous_procedures = (
        {failed_line.procedure} if failed_line and failed_line.procedure else set()
    )

    # Lines begun after the failure are the salvage already chosen: not offered again as new.
    started_after = [
        ln
        for ln in analysis.lines
        if ln.domain == domain and not ln.maintenance and ln.start > failure.when
    ]
    given_after = frozenset(d for ln in started_after for d in ln.ingredients)
    if started_after:
        facts.append(
            "after this failure, "
            + "; ".join(
                f"line {ln.number} ({ln.regimen}) started {ln.start.isoformat()}"
                for ln in started_after
            )
        )
    receptor_status = receptors.hormone_receptor(record)
    her2_status = receptors.her2(record)
    receptor_unknown = False
    chosen: list[tuple[int, dict[str, Any]]] = []
    excluded: list[Exclusion] = []
    needs_renal = False
    for option in pathway["options"]:
        when = option["when"]
        if failure.kind not in when["failure"]:
            continue
        if when["timing"] != "any" and timing != when["timing"]:
            continue
        if when["transplant"] != "any" and when["transplant"] != transplant:
            continue
        if when["after_procedure"] and not previous_procedures & set(when["after_procedure"]):
            continue
        if when["min_failed_lines"] and failed_lines < when["min_failed_lines"]:
            continue
        regimen = kb.regimens.get(option["regimen"] or "")
        name = option["regimen"] or option["label"]
        components = regimen.components if regimen else frozenset()
        reasons: list[str] = []
        if option["id"] in disabled:
            reasons.append(f"disabled by the local pathway of {overlay.get('institution')}")
        if name in failed_regimens:
            reasons.append(f"this regimen already failed: {failed_regimens[name]}")
        given = next(
            (
                ln
                for ln in started_after
                if ln.regimen == name
                or (components and components <= given_after)
                or (option.get("procedure") and ln.procedure == option["procedure"])
            ),
            None,
        )
        if given is not None:
            reasons.append(
                f"already given after this failure: line {given.number} "
                f"({given.regimen}) from {given.start.isoformat()} "
                f"({', '.join(given.sources[:3])})"
            )
        reasons += [failed_drugs[d] for d in sorted(components) if d in failed_drugs]
        renal_rules = {"cisplatin"} | {r["drug"] for r in rules["antiretroviral"]["renal_limits"]}
        needs_renal = needs_renal or bool(components & renal_rules)
        reasons += [
            why
            for _, why in contraindications.drug_contraindications(components, record, kb, as_of)
        ]
        for marker, status in (("hormone_receptor", receptor_status), ("her2", her2_status)):
            needed = when.get(marker, "any")
            if needed == "any":
                continue
            if status.value == "unknown":
                receptor_unknown = True
            elif status.value != needed:
                label = "hormone-receptor" if marker == "hormone_receptor" else "HER2"
                reasons.append(
                    f"needs {label}-{needed} disease: {status.text} ({', '.join(status.sources)})"
                )
        if reasons:
            excluded.append(Exclusion(regimen=name, option_id=option["id"], reasons=tuple(reasons)))
            continue
        chosen.append((rerank.get(option["id"], option["rank"]), option))

    if receptor_unknown:
        missing.append(
            "no recent ER/PR or HER2 result: options that need hormone-receptor-"
            "positive, HER2-negative disease are shown; confirm the receptor status"
        )
    if needs_renal and clearance is None:
        missing.append(
            "no creatinine with weight, and no eGFR, in the last "
            f"{rules['recency']['renal_days']} days: creatinine clearance unknown, so "
            "options with cisplatin or tenofovir are not checked against renal function"
        )
    elif clearance is not None:
        facts.append(clearance.text)
    hbv = contraindications.hbv_coinfection(record, kb) if disease == "hiv" else None
    if disease == "hiv" and hbv is None:
        missing.append(
            "no hepatitis B co-infection is recorded: confirm HBV status before "
            "changing tenofovir, emtricitabine or lamivudine"
        )
    if disease == "hiv":
        missing.append(
            "HIV-1 genotypic resistance results are not read by this version: "
            "check for a genotype since the failure and document drug-class resistance"
        )

    options: list[Option] = []
    for rank, (_, option) in enumerate(sorted(chosen, key=lambda item: item[0]), start=1):
        regimen = kb.regimens.get(option["regimen"] or "")
        options.append(
            Option(
                rank=rank,
                option_id=option["id"],
                regimen=option["regimen"] or option["label"],
                kind=option["kind"],
                ingredients=tuple(sorted(regimen.components)) if regimen else (),
                setting=regimen.setting
                if regimen
                else ("local-salvage-procedure" if option["kind"] == "procedure" else "test"),
                rationale=(" ".join(option["rationale"].split()), *facts),
                cautions=tuple(option["cautions"]) + _hbv_caution(hbv, regimen, kb),
                evidence=tuple(option["evidence"]),
                sources=tuple(dict.fromkeys(sources)),
            )
        )
    no_option: str | None = None
    if not options:
        no_option = (
            f"no option of knowledge base {kb.version} fits this {failure.kind}"
            + (" once exclusions are applied" if excluded else "")
            + ": discuss at a multidisciplinary meeting"
        )
    return Recommendation(
        patient=analysis.patient,
        disease=disease,
        failure=failure,
        options=tuple(options),
        excluded=tuple(excluded),
        missing_data=tuple(missing),
        facts=tuple(facts),
        statement=no_option,
    )
